// The exercise's state as the team room, the console and the projector show it: its status,
// the running clock, the live connection and their labels; and the response fields as the
// server defines them (app/responses/fields.py, rendered once into the page as JSON by
// templates/partials/exercise_fields.html).
//
// window.TabletopExercise:
//   fields          [{key, group, label}] in the workshop's order, labels in the page's language
//   matrixFields    keys of the announcement and "who is in charge" fields (the ones progress counts)
//   runningSeconds(inject, clock, nowMs)
//                   seconds of running time since the inject's delivery, the pauses since then left
//                   out, computed as the server does (`running_seconds`): clock is the exercise's
//                   {paused_s, paused_since}, the inject carries delivered_at and paused_s_at_delivery
//   withState(page, {quietOnline})
//                   the page's Alpine component with the shared state added:
//                     status, pausedS, pausedSince, conn, now   (reactive properties)
//                     connect({path, onHello, onEvent, onControl, onFatal, everySecond})
//                         opens the live socket; conn and now (the server's clock) follow it
//                     applyStatus(exercise)   a status event, a snapshot's exercise or a REST reply
//                     elapsed(inject), overdue(inject), remainingText(inject), submittedAfter(sub),
//                     progressText(count)
//                     statusText, statusClass, connText, connClass   (quietOnline: no text when online)
"use strict";

(function () {
  const { t, duration } = window.Tabletop;
  const source = document.getElementById("exercise-fields");
  const fields = Object.freeze(source ? JSON.parse(source.textContent) : []);
  const matrixFields = Object.freeze(
    fields.filter((field) => field.group === "announcement" || field.group === "roles").map((field) => field.key),
  );

  function runningSeconds(inject, clock, nowMs) {
    let paused = (clock.paused_s || 0) - (inject.paused_s_at_delivery || 0);
    if (clock.paused_since) paused += (nowMs - Date.parse(clock.paused_since)) / 1000;
    return Math.max(0, (nowMs - Date.parse(inject.delivered_at)) / 1000 - paused);
  }

  function shared(quietOnline) {
    return {
      status: "draft",
      pausedS: 0,
      pausedSince: null,
      conn: "connecting",
      now: Date.now(),

      connect({ path, onHello, onEvent, onControl, onFatal, everySecond }) {
        const live = new window.TabletopLive.LiveSocket({
          path,
          onHello,
          onEvent,
          onControl,
          onFatal,
          onState: (state) => { this.conn = state; },
        });
        live.start();
        setInterval(() => {
          this.now = live.now();
          if (everySecond) everySecond(live);
        }, 1000);
        return live;
      },

      applyStatus(exercise) {
        if (!exercise || !exercise.status) return;
        const previous = this.status;
        this.status = exercise.status;
        if (typeof exercise.paused_s === "number") {
          this.pausedS = exercise.paused_s;
        } else if (previous === "paused" && exercise.status !== "paused" && this.pausedSince) {
          // A reply without the clock (REST): count the pause here until the status event comes.
          this.pausedS += (this.now - Date.parse(this.pausedSince)) / 1000;
        }
        this.pausedSince = exercise.paused_since || (exercise.status === "paused" ? exercise.at || new Date(this.now).toISOString() : null);
      },

      elapsed(inject) {
        return runningSeconds(inject, { paused_s: this.pausedS, paused_since: this.pausedSince }, this.now);
      },

      overdue(inject) {
        return Boolean(inject.time_limit_s && this.elapsed(inject) > inject.time_limit_s);
      },

      remainingText(inject) {
        const left = inject.time_limit_s - this.elapsed(inject);
        return left < 0 ? t("overdue") + " +" + duration(-left) : t("remaining", { time: duration(left) });
      },

      submittedAfter(sub) {
        return t("submitted_after", { time: duration(sub.elapsed_s) });
      },

      progressText(count) {
        return t("fields_filled", { n: count, total: matrixFields.length });
      },

      get statusText() {
        return t(this.status);
      },

      get statusClass() {
        return "status-" + this.status;
      },

      get connText() {
        return quietOnline && this.conn === "online" ? "" : t(this.conn);
      },

      get connClass() {
        return "conn-" + this.conn;
      },
    };
  }

  // Property descriptors, not a spread: a spread would read the getters once instead of copying them.
  function withState(page, options) {
    const component = {};
    Object.defineProperties(component, Object.getOwnPropertyDescriptors(shared(Boolean(options && options.quietOnline))));
    Object.defineProperties(component, Object.getOwnPropertyDescriptors(page));
    return component;
  }

  window.TabletopExercise = { fields, matrixFields, runningSeconds, withState };
})();
