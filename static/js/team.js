// The team room: inject feed, the shared answer form with autosave, presence and conflicts.
"use strict";

document.addEventListener("alpine:init", () => {
  const { t, api, duration, clock } = window.Tabletop;
  const { CellSync, beep } = window.TabletopLive;
  const { withState } = window.TabletopExercise;

  window.Alpine.data("teamRoom", () => {
    // Kept outside Alpine's reactive state: plain objects with their own bookkeeping.
    let live = null;
    let sync = null;

    return withState({
      exerciseId: "",
      teamId: "",
      me: "",
      locale: "ja",
      injects: [],
      submissions: {},
      messages: [],
      people: [],
      currentId: null,
      unseen: {},
      announcement: "",
      rev: 0,
      submitting: false,
      flash: "",
      removed: false,

      init() {
        const data = this.$el.dataset;
        this.exerciseId = data.exerciseId;
        this.teamId = data.teamId;
        this.me = data.participantId;
        this.locale = data.locale;
        this.status = data.status;
        sync = new CellSync({
          storagePrefix: "tabletop.edit." + this.exerciseId + "." + this.teamId + ".",
          send: (message) => live.send(message),
          onChange: (key) => this.changed(key),
        });
        live = this.connect({
          path: "/ws/participant",
          onHello: (message) => this.hello(message),
          onEvent: (message) => this.event(message),
          onControl: (message) => this.control(message),
          onFatal: (code) => this.fatal(code),
          everySecond: (socket) => { if (sync.stalled()) socket.drop(); },
        });
      },

      // --- messages from the server ---------------------------------------------------------
      hello(message) {
        const snapshot = message.snapshot || {};
        const exercise = snapshot.exercise || message.exercise || {};
        this.statusUpdate(exercise);
        for (const inject of snapshot.injects || []) this.addInject(inject, false);
        for (const sub of snapshot.submissions || []) this.addSubmission(sub);
        for (const note of snapshot.messages || []) this.addMessage(note, false);
        this.applyPresence(snapshot.presence || message.presence);
        sync.snapshot((snapshot.cells || []).filter((cell) => !cell.team_id || cell.team_id === this.teamId));
        if (!this.currentId && this.injects.length) this.currentId = this.injects[this.injects.length - 1].id;
        this.fillForm();
        sync.flushAll();
      },

      event(message) {
        switch (message.type) {
          case "inject":
            this.addInject(message.inject, true);
            break;
          case "response":
            if (message.team_id === this.teamId && sync.response(message)) {
              this.showRemote(message.inject_id, message.field);
            }
            break;
          case "submission":
            if (message.team_id === this.teamId) this.addSubmission(message);
            break;
          case "status":
            this.statusUpdate(message);
            break;
          case "message":
            this.addMessage(message, true);
            break;
          case "participant":
            if (message.participant && !this.people.some((p) => p.id === message.participant.id)) {
              this.people = [...this.people, { ...message.participant, online: false }];
            }
            break;
          case "participant_removed":
            this.people = this.people.filter((p) => p.id !== message.participant_id);
            break;
        }
      },

      control(message) {
        if (message.type === "ack") {
          sync.ack(message);
        } else if (message.type === "error") {
          if (!sync.error(message)) this.flash = t("error", { detail: message.detail || message.code });
        } else if (message.type === "presence") {
          this.applyPresence(message);
        }
      },

      // 4403: the facilitator removed this participant; the page says so and stays, rather than
      // jumping to the join page and leaving them wondering what happened.
      // 4401: the token is unknown (expired, or the server's data was reset): join again.
      fatal(code) {
        if (code === 4403) {
          this.removed = true;
          this.conn = "removed";
          return;
        }
        this.flash = t("signed_out");
        window.location.assign("/join");
      },

      // Answers held while the exercise was paused go out as soon as it runs again.
      statusUpdate(exercise) {
        const wasRunning = this.status === "running";
        this.applyStatus(exercise);
        if (this.status === "running" && !wasRunning && sync) sync.retryFailed();
      },

      applyPresence(presence) {
        if (!presence) return;
        const list = Array.isArray(presence) ? presence.find((p) => p.team_id === this.teamId) : presence;
        if (list && (!list.team_id || list.team_id === this.teamId)) this.people = list.participants || [];
      },

      addInject(inject, live) {
        if (!inject || this.injects.some((known) => known.id === inject.id)) return;
        this.injects = [...this.injects, inject].sort((a, b) => a.position - b.position);
        if (!live) return;
        this.announcement = t("new_inject") + ": " + this.injectTitle(inject);
        this.unseen = { ...this.unseen, [inject.id]: true };
        beep();
        if (!this.currentId) this.open(inject.id);
      },

      addSubmission(sub) {
        this.submissions = { ...this.submissions, [sub.inject_id]: sub };
      },

      addMessage(note, fresh) {
        if (this.messages.some((known) => known.seq === note.seq)) return;
        this.messages = [...this.messages, note].sort((a, b) => b.seq - a.seq);
        if (fresh) {
          this.announcement = t("message_from") + ": " + note.text;
          beep();
        }
      },

      // --- the form --------------------------------------------------------------------------
      form() {
        return this.$refs.form;
      },

      key(field) {
        return sync.key(this.currentId, field);
      },

      fillForm() {
        const form = this.form();
        if (!form || !this.currentId) return;
        for (const element of form.elements) {
          if (!element.name || element.type === "submit") continue;
          if (element.type === "radio") {
            element.checked = sync.value(this.key(element.name)) === element.value;
          } else if (element !== document.activeElement || !sync.local.has(this.key(element.name))) {
            element.value = sync.value(this.key(element.name));
          }
        }
      },

      showRemote(injectId, field) {
        if (injectId !== this.currentId) return;
        const element = this.form().elements[field];
        if (!element) return;
        if (element instanceof RadioNodeList || element.type === "radio") {
          this.form().elements[field].value = sync.value(this.key(field));
          return;
        }
        const focused = element === document.activeElement;
        const start = element.selectionStart;
        const end = element.selectionEnd;
        element.value = sync.value(this.key(field));
        if (focused && start !== null) element.setSelectionRange(start, end);
      },

      changed() {
        this.rev += 1;
      },

      typed(event) {
        const target = event.target;
        if (!target.name || !this.currentId) return;
        const radio = target.type === "radio";
        if (radio !== (event.type === "change")) return;
        sync.typed(this.key(target.name), target.value);
        if (radio) sync.flush(this.key(target.name));
      },

      focused(event) {
        if (event.target.name && this.currentId) {
          live.send({ type: "focus", inject_id: this.currentId, field: event.target.name });
        }
      },

      blurred(event) {
        if (event.target.name) {
          if (this.currentId) sync.flush(this.key(event.target.name));
          live.send({ type: "focus", inject_id: null, field: null });
        }
      },

      select(event) {
        this.open(event.currentTarget.dataset.inject);
      },

      open(injectId) {
        this.currentId = injectId;
        const unseen = { ...this.unseen };
        delete unseen[injectId];
        this.unseen = unseen;
        this.$nextTick(() => this.fillForm());
      },

      entry(field) {
        this.rev;
        return this.currentId ? sync.local.get(this.key(field)) : null;
      },

      editorsOf(field) {
        const names = this.people
          .filter((p) => p.id !== this.me && p.online && p.field === field && (!p.inject_id || p.inject_id === this.currentId))
          .map((p) => p.name);
        return names.length ? names.join(", ") + " " + t("editing") : "";
      },

      saveState(field) {
        this.rev;
        if (!this.currentId) return "";
        const state = sync.state(this.key(field));
        if (state === "saving") return this.conn === "online" ? t("saving") : t("unsent");
        if (state === "unsent") return t("unsent");
        if (state === "error") return this.entry(field).error === "not_running" ? t("held") : this.entry(field).error;
        return "";
      },

      hasConflict(field) {
        const entry = this.entry(field);
        return Boolean(entry && entry.conflict);
      },

      theirsLabel(field) {
        const entry = this.entry(field);
        return entry && entry.conflict ? t("theirs_by", { name: entry.conflict.updated_by || "?" }) : "";
      },

      theirsValue(field) {
        const entry = this.entry(field);
        return entry && entry.conflict ? entry.conflict.value : "";
      },

      mineValue(field) {
        const entry = this.entry(field);
        return entry ? entry.value : "";
      },

      keepMine(event) {
        sync.keepMine(this.key(event.currentTarget.dataset.field));
      },

      takeTheirs(event) {
        const field = event.currentTarget.dataset.field;
        sync.takeTheirs(this.key(field));
        this.showRemote(this.currentId, field);
      },

      async submit() {
        if (!this.currentId || this.submitting) return;
        const injectId = this.currentId;
        this.submitting = true;
        this.flash = "";
        try {
          for (const key of Array.from(sync.local.keys())) {
            if (key.startsWith(injectId + "/")) sync.flush(key);
          }
          // Wait briefly for the answers just typed to be acknowledged before submitting.
          for (let i = 0; i < 50 && [...sync.local.keys()].some((k) => k.startsWith(injectId + "/")); i++) {
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          if (this.conn !== "online") {
            this.flash = t("submit_offline");
            return;
          }
          const path = "/api/teams/" + encodeURIComponent(this.teamId) + "/injects/" + encodeURIComponent(injectId) + "/submit";
          const result = await api("POST", path);
          this.addSubmission({ inject_id: injectId, ...result });
        } catch (error) {
          this.flash = t("error", { detail: error.message });
        } finally {
          this.submitting = false;
        }
      },

      // --- what the template shows --------------------------------------------------------------
      get current() {
        return this.injects.find((inject) => inject.id === this.currentId) || null;
      },

      text(inject, part) {
        const texts = inject && inject.texts && inject.texts[this.locale];
        return (texts && texts[part]) || (inject && inject[part]) || "";
      },

      injectTitle(inject) {
        return inject.position + ". " + this.text(inject, "title");
      },

      get currentTitle() {
        return this.current ? this.injectTitle(this.current) : "";
      },

      get currentBody() {
        return this.text(this.current, "body");
      },

      get currentSource() {
        return this.text(this.current, "source");
      },

      get currentReceiving() {
        return this.text(this.current, "receiving");
      },

      get currentTimer() {
        return this.current ? this.timerText(this.current) : "";
      },

      timerText(inject) {
        const sub = this.submissions[inject.id];
        if (sub) return this.submittedAfter(sub);
        const text = t("elapsed") + " " + duration(this.elapsed(inject));
        return inject.time_limit_s ? text + " · " + this.remainingText(inject) : text;
      },

      feedClass(inject) {
        const sub = this.submissions[inject.id];
        return {
          unseen: Boolean(this.unseen[inject.id]),
          done: Boolean(sub),
          overdue: !sub && this.overdue(inject),
        };
      },

      isCurrent(inject) {
        return inject.id === this.currentId ? "true" : "false";
      },

      get submitDisabled() {
        return this.submitting || this.status !== "running" || Boolean(this.submissions[this.currentId]);
      },

      get submittedText() {
        const sub = this.submissions[this.currentId];
        if (!sub) return this.flash;
        return this.submittedAfter(sub) + (sub.submitted_by ? " · " + sub.submitted_by : "");
      },

      get onlineNames() {
        const online = this.people.filter((p) => p.online).map((p) => p.name);
        return online.length ? online.join(", ") : t("nobody_online");
      },

      clock,
    });
  });
});
