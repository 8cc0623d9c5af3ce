// The projector view: the latest inject in large type, its timer, and each team's status.
"use strict";

document.addEventListener("alpine:init", () => {
  const { t, duration } = window.Tabletop;
  const { matrixFields, withState } = window.TabletopExercise;
  const ANNOUNCEMENT_AND_ROLES = new Set(matrixFields);

  window.Alpine.data("projector", () => {
    let live = null;

    return withState({
      exerciseId: "",
      locale: "ja",
      teams: [],
      injects: [],
      filled: {},
      submissions: {},
      presence: {},

      init() {
        const data = this.$el.dataset;
        this.exerciseId = data.exerciseId;
        this.locale = data.locale;
        this.status = data.status;
        this.teams = JSON.parse(data.teams);
        live = this.connect({
          path: "/ws/exercises/" + encodeURIComponent(this.exerciseId) + "/facilitator",
          onHello: (message) => this.hello(message),
          onEvent: (message) => this.event(message),
          onControl: (message) => { if (message.type === "presence") this.applyPresence(message); },
          onFatal: () => window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname)),
        });
      },

      hello(message) {
        const snapshot = message.snapshot || {};
        this.applyStatus(snapshot.exercise || message.exercise);
        for (const inject of snapshot.injects || []) this.addInject(inject);
        for (const cell of snapshot.cells || []) this.setCell(cell);
        for (const sub of snapshot.submissions || []) this.addSubmission(sub);
        const presence = snapshot.presence || message.presence || [];
        for (const team of Array.isArray(presence) ? presence : [presence]) this.applyPresence(team);
      },

      event(message) {
        if (message.type === "inject") this.addInject(message.inject);
        else if (message.type === "response") this.setCell(message);
        else if (message.type === "submission") this.addSubmission(message);
        else if (message.type === "status") this.applyStatus(message);
      },

      applyPresence(team) {
        if (team && team.team_id) this.presence = { ...this.presence, [team.team_id]: team.participants || [] };
      },

      addInject(inject) {
        if (!inject || this.injects.some((known) => known.id === inject.id)) return;
        this.injects = [...this.injects, inject].sort((a, b) => a.position - b.position);
      },

      // Only whether a field is filled matters here; the text itself is not shown on the wall.
      setCell(cell) {
        if (!ANNOUNCEMENT_AND_ROLES.has(cell.field)) return;
        const key = cell.team_id + "/" + cell.inject_id + "/" + cell.field;
        const known = this.filled[key];
        if (!known || cell.version > known.version) {
          this.filled = { ...this.filled, [key]: { version: cell.version, filled: cell.value.trim() !== "" } };
        }
      },

      addSubmission(sub) {
        this.submissions = { ...this.submissions, [sub.team_id + "/" + sub.inject_id]: sub };
      },

      get current() {
        return this.injects.length ? this.injects[this.injects.length - 1] : null;
      },

      text(part) {
        const inject = this.current;
        const texts = inject && inject.texts && inject.texts[this.locale];
        return (texts && texts[part]) || (inject && inject[part]) || "";
      },

      get currentTitle() {
        return this.current ? this.current.position + ". " + this.text("title") : "";
      },

      get currentSource() {
        return this.text("source");
      },

      get currentReceiving() {
        return this.text("receiving");
      },

      get currentTimer() {
        const inject = this.current;
        if (!inject) return "";
        return inject.time_limit_s ? this.remainingText(inject) : duration(this.elapsed(inject));
      },

      teamStatus(teamId) {
        const online = (this.presence[teamId] || []).filter((p) => p.online).length;
        const people = t("online") + " " + online;
        const inject = this.current;
        if (!inject || !inject.team_ids.includes(teamId)) return people;
        const sub = this.submissions[teamId + "/" + inject.id];
        if (sub) return people + " · " + this.submittedAfter(sub);
        let count = 0;
        for (const [key, cell] of Object.entries(this.filled)) {
          if (cell.filled && key.startsWith(teamId + "/" + inject.id + "/")) count += 1;
        }
        return people + " · " + count + "/" + matrixFields.length;
      },

    }, { quietOnline: true });
  });
});
