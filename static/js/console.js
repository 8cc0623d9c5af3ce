// The facilitator console: controls, pushes, live progress grid, a team's answers, messages,
// participants (with removal) and the facilitator's own injects.
"use strict";

document.addEventListener("alpine:init", () => {
  const { t, api, duration } = window.Tabletop;
  const { matrixFields, withState } = window.TabletopExercise;

  window.Alpine.data("consoleView", () => {
    let live = null;

    return withState({
      exerciseId: "",
      locale: "ja",
      teams: [],
      injects: [],
      cells: {},
      submissions: {},
      presence: {},
      flash: "",
      limitMinutes: "",
      autoFollowups: false,
      chosenTeams: [],
      messageText: "",
      messageTeam: "",
      viewTeam: "",
      viewInject: "",
      endArmed: false,
      removing: "",
      removeError: "",
      customTitle: "",
      customBody: "",
      customSource: "",
      customReceiving: "",
      customLimit: "",
      customTarget: "all",
      customTeams: [],
      customError: "",
      customNote: "",
      customBusy: false,

      init() {
        const data = this.$el.dataset;
        this.exerciseId = data.exerciseId;
        this.locale = data.locale;
        this.status = data.status;
        this.teams = JSON.parse(data.teams);
        this.viewTeam = this.teams.length ? this.teams[0].id : "";
        live = this.connect({
          path: "/ws/exercises/" + encodeURIComponent(this.exerciseId) + "/facilitator",
          onHello: (message) => this.hello(message),
          onEvent: (message) => this.event(message),
          onControl: (message) => this.control(message),
          onFatal: (code) => {
            if (code === 4401) window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
            else this.flash = t("forbidden");
          },
        });
      },

      hello(message) {
        const snapshot = message.snapshot || {};
        this.applyStatus(snapshot.exercise || message.exercise);
        if (snapshot.teams) {
          for (const team of snapshot.teams) this.addTeam(team);
        }
        for (const inject of snapshot.injects || []) this.addInject(inject);
        for (const cell of snapshot.cells || []) this.setCell(cell);
        for (const sub of snapshot.submissions || []) this.addSubmission(sub);
        const presence = snapshot.presence || message.presence || [];
        for (const team of Array.isArray(presence) ? presence : [presence]) this.applyPresence(team);
      },

      event(message) {
        switch (message.type) {
          case "inject": this.addInject(message.inject); break;
          case "response": this.setCell(message); break;
          case "submission": this.addSubmission(message); break;
          case "status": this.applyStatus(message); break;
          case "team": this.addTeam(message.team); break;
          case "participant": this.addParticipant(message.team_id, message.participant); break;
          case "participant_removed": this.dropParticipant(message.team_id, message.participant_id); break;
        }
      },

      control(message) {
        if (message.type === "presence") this.applyPresence(message);
        else if (message.type === "error") this.flash = t("error", { detail: message.detail || message.code });
      },

      applyPresence(team) {
        if (team && team.team_id) this.presence = { ...this.presence, [team.team_id]: team.participants || [] };
      },

      addTeam(team) {
        if (team && !this.teams.some((known) => known.id === team.id)) this.teams = [...this.teams, team];
      },

      // Presence lists every participant of a team, online or not; joins and removals keep it
      // right even when the presence announcement comes from another server process.
      addParticipant(teamId, person) {
        const known = this.presence[teamId] || [];
        if (!person || known.some((p) => p.id === person.id)) return;
        this.presence = { ...this.presence, [teamId]: [...known, { id: person.id, name: person.name, online: false }] };
      },

      dropParticipant(teamId, participantId) {
        const known = this.presence[teamId] || [];
        this.presence = { ...this.presence, [teamId]: known.filter((p) => p.id !== participantId) };
        if (this.removing === participantId) this.removing = "";
      },

      addInject(inject) {
        if (!inject || this.injects.some((known) => known.id === inject.id)) return;
        this.injects = [...this.injects, inject].sort((a, b) => a.position - b.position);
        this.viewInject = inject.id;
      },

      setCell(cell) {
        const key = cell.team_id + "/" + cell.inject_id + "/" + cell.field;
        const known = this.cells[key];
        if (!known || cell.version > known.version) {
          this.cells = { ...this.cells, [key]: { value: cell.value, version: cell.version } };
        }
      },

      addSubmission(sub) {
        this.submissions = { ...this.submissions, [sub.team_id + "/" + sub.inject_id]: sub };
      },

      // --- actions ------------------------------------------------------------------------------
      async call(path, body) {
        this.flash = "";
        try {
          return await api("POST", "/api/exercises/" + encodeURIComponent(this.exerciseId) + path, body);
        } catch (error) {
          this.flash = t("error", { detail: error.message });
          return null;
        }
      },

      async transition(action) {
        const result = await this.call("/" + action);
        if (result) this.applyStatus(result);
      },

      // Ending cannot be undone, so the button asks for a second click within a few seconds.
      endExercise() {
        if (!this.endArmed) {
          this.endArmed = true;
          setTimeout(() => { this.endArmed = false; }, 5000);
          return;
        }
        this.endArmed = false;
        this.transition("end");
      },

      get endLabel() {
        return this.endArmed ? t("confirm_end") : t("end");
      },

      pushBody(scenarioId, teamIds) {
        const body = { scenario_id: scenarioId };
        if (teamIds) body.team_ids = teamIds;
        const minutes = parseInt(this.limitMinutes, 10);
        if (minutes > 0) body.time_limit_s = minutes * 60;
        if (this.autoFollowups) body.auto_followups = true;
        return body;
      },

      // Over the live socket when it is up (every participant waits on this click: no HTTP
      // request to parse, no new authentication), else over HTTP; the answers are the same.
      async sendInject(body) {
        const asked = live.request({ type: "inject", ...body });
        if (!asked) return api("POST", "/api/exercises/" + encodeURIComponent(this.exerciseId) + "/injects", body);
        return (await asked).inject;
      },

      injectFailure(error) {
        return error.code === "connection_lost" ? t("inject_unknown") : error.message;
      },

      async deliver(body) {
        this.flash = "";
        try {
          this.addInject(await this.sendInject(body));
          this.flash = t("pushed");
        } catch (error) {
          this.flash = t("error", { detail: this.injectFailure(error) });
        }
      },

      pushAll(event) {
        this.deliver(this.pushBody(event.currentTarget.dataset.scenario, null));
      },

      pushChosen(event) {
        if (!this.chosenTeams.length) {
          this.flash = t("choose_team");
          return;
        }
        this.deliver(this.pushBody(event.currentTarget.dataset.scenario, [...this.chosenTeams]));
      },

      pushFollowup(event) {
        const { scenario, followup } = event.currentTarget.dataset;
        // A follow-up goes to the teams that received its scenario, unless teams are chosen.
        const parent = this.injects.find((i) => i.scenario_id === scenario && !i.followup_id);
        const teamIds = this.chosenTeams.length ? [...this.chosenTeams] : parent ? parent.team_ids : null;
        const body = { scenario_id: scenario, followup_id: followup };
        if (teamIds) body.team_ids = teamIds;
        this.deliver(body);
      },

      // Removing someone cannot be undone, so the button first asks, in place, whether to go on.
      armRemove(person) {
        this.removeError = "";
        this.removing = person.id;
        this.$nextTick(() => this.focusIn(person.id, "[data-cancel]"));
      },

      cancelRemove() {
        const id = this.removing;
        this.removing = "";
        this.$nextTick(() => this.focusIn(id, "[data-remove]"));
      },

      focusIn(personId, selector) {
        const row = document.querySelector('[data-person="' + CSS.escape(personId) + '"]');
        const target = row && row.querySelector(selector);
        if (target) target.focus();
      },

      async removeParticipant(person) {
        const teamId = Object.keys(this.presence).find((id) => this.presence[id].some((p) => p.id === person.id));
        const path = "/api/exercises/" + encodeURIComponent(this.exerciseId) + "/participants/" + encodeURIComponent(person.id);
        try {
          await api("DELETE", path);
        } catch (error) {
          this.removeError = t("error", { detail: error.message });
          return;
        }
        if (teamId) this.dropParticipant(teamId, person.id);
        this.removing = "";
        this.flash = t("participant_removed", { name: person.name });
      },

      chooseTeams() {
        if (this.customTeams.length) this.customTarget = "chosen";
      },

      // The facilitator's own text; what was typed stays in the form until the server accepts it.
      async pushCustom() {
        if (this.customBusy) return;
        this.customError = "";
        this.customNote = "";
        const body = {
          title: this.customTitle,
          body: this.customBody,
          source: this.customSource,
          receiving: this.customReceiving,
        };
        const limit = String(this.customLimit).trim();
        if (limit) {
          const minutes = Number(limit);
          if (!Number.isInteger(minutes) || minutes < 1 || minutes > 600) {
            this.customError = t("limit_invalid");
            return;
          }
          body.time_limit_s = minutes * 60;
        }
        if (this.customTarget === "chosen") {
          if (!this.customTeams.length) {
            this.customError = t("choose_team");
            return;
          }
          body.team_ids = [...this.customTeams];
        }
        this.customBusy = true;
        try {
          this.addInject(await this.sendInject(body));
          this.customTitle = this.customBody = this.customSource = this.customReceiving = this.customLimit = "";
          this.customNote = t("pushed");
        } catch (error) {
          this.customError = this.injectFailure(error);
        } finally {
          this.customBusy = false;
        }
      },

      async sendMessage() {
        const text = this.messageText.trim();
        if (!text) return;
        const body = { text };
        if (this.messageTeam) body.team_ids = [this.messageTeam];
        if (await this.call("/messages", body)) {
          this.messageText = "";
          this.flash = t("sent");
        }
      },

      // --- what the template shows --------------------------------------------------------------
      text(inject, part) {
        const texts = inject && inject.texts && inject.texts[this.locale];
        return (texts && texts[part]) || (inject && inject[part]) || "";
      },

      injectLabel(inject) {
        const title = this.text(inject, "title");
        return inject.position + ". " + (title.length > 28 ? title.slice(0, 27) + "…" : title);
      },

      delivered(teamId, inject) {
        return inject.team_ids.includes(teamId);
      },

      filledCount(teamId, inject) {
        return matrixFields.filter((field) => {
          const cell = this.cells[teamId + "/" + inject.id + "/" + field];
          return cell && cell.value.trim() !== "";
        }).length;
      },

      filledText(teamId, inject) {
        if (!this.delivered(teamId, inject)) return "—";
        return this.progressText(this.filledCount(teamId, inject));
      },

      timingText(teamId, inject) {
        if (!this.delivered(teamId, inject)) return "";
        const sub = this.submissions[teamId + "/" + inject.id];
        if (sub) return this.submittedAfter(sub);
        if (this.status === "ended") return t("ended");
        return (this.overdue(inject) ? t("overdue") + " " : t("elapsed") + " ") + duration(this.elapsed(inject));
      },

      cellClass(teamId, inject) {
        if (!this.delivered(teamId, inject)) return "cell-none";
        if (this.submissions[teamId + "/" + inject.id]) return "cell-done";
        if (this.overdue(inject)) return "cell-overdue";
        return "cell-open";
      },

      onlineNames(teamId) {
        const online = (this.presence[teamId] || []).filter((p) => p.online).map((p) => p.name);
        return online.length ? online.join(", ") : t("nobody_online");
      },

      participantsOf(teamId) {
        return this.presence[teamId] || [];
      },

      personState(person) {
        return person.online ? t("online") : t("not_connected");
      },

      personClass(person) {
        return person.online ? "person-online" : "person-away";
      },

      isArming(person) {
        return this.removing === person.id;
      },

      removeLabel(person) {
        return t("remove_named", { name: person.name });
      },

      removeQuestion(person) {
        return t("remove_question", { name: person.name });
      },

      viewValue(field) {
        const cell = this.cells[this.viewTeam + "/" + this.viewInject + "/" + field];
        return cell ? cell.value : "";
      },
    });
  });
});
