// The debrief page: every inject's answers side by side, timing bars, answer history, evaluation.
"use strict";

document.addEventListener("alpine:init", () => {
  const { api } = window.Tabletop;

  window.Alpine.data("debriefView", () => {
    let nextKey = 0;

    return {
      exerciseId: "",
      text: {},
      labels: {},
      loaded: false,
      flash: "",
      saveMessage: "",
      teams: [],
      fields: [],
      injects: [],
      ratings: [],
      plan: [],
      strengthsText: "",
      areasText: "",
      history: { open: false, title: "", rows: [] },

      init() {
        this.exerciseId = this.$el.dataset.exerciseId;
        this.text = JSON.parse(this.$el.dataset.text);
        this.labels = JSON.parse(this.$el.dataset.labels);
        this.load();
      },

      async load() {
        try {
          const data = await api("GET", "/api/exercises/" + encodeURIComponent(this.exerciseId) + "/debrief");
          this.teams = data.teams;
          this.fields = data.fields;
          this.injects = data.injects;
          this.fillEvaluation(data.evaluation);
          this.loaded = true;
          this.flash = "";
        } catch (error) {
          this.flash = error.message;
        }
      },

      fillEvaluation(evaluation) {
        const stored = {};
        for (const rating of evaluation.ratings) stored[rating.team_id + " " + rating.inject_id] = rating;
        const rows = [];
        for (const team of this.teams) {
          for (const inject of this.injects) {
            if (!inject.team_ids.includes(team.id)) continue;
            const found = stored[team.id + " " + inject.id] || {};
            rows.push({
              key: team.id + " " + inject.id,
              team_id: team.id,
              inject_id: inject.id,
              label: this.injectTitle(inject),
              rating: found.rating || "",
              comment: found.comment || "",
            });
          }
        }
        this.ratings = rows;
        this.strengthsText = evaluation.strengths.join("\n");
        this.areasText = evaluation.areas_for_improvement.join("\n");
        this.plan = evaluation.improvement_plan.map((item) => ({ ...item, due_date: item.due_date || "", key: nextKey++ }));
      },

      injectTitle(inject) {
        return "No." + inject.position + " " + inject.title;
      },

      deliveredText(inject) {
        const when = new Date(inject.delivered_at);
        return this.text.delivered + ": " + (isNaN(when) ? "" : when.toLocaleString());
      },

      teamName(teamId) {
        const team = this.teams.find((t) => t.id === teamId);
        return team ? team.name : "";
      },

      fieldLabel(key) {
        return this.labels[key] || key;
      },

      cell(teamId, inject, key) {
        const answers = inject.answers[teamId];
        return answers ? answers[key] : undefined;
      },

      hasAnswer(teamId, inject, key) {
        const cell = this.cell(teamId, inject, key);
        return Boolean(cell && cell.value);
      },

      answerText(teamId, inject, key) {
        if (!inject.team_ids.includes(teamId)) return this.text.not_delivered;
        const cell = this.cell(teamId, inject, key);
        return cell ? cell.value : "";
      },

      answerClass(teamId, inject, key) {
        if (!inject.team_ids.includes(teamId)) return "not-delivered";
        return this.hasAnswer(teamId, inject, key) ? "" : "empty";
      },

      historyLabel(teamId, inject, key) {
        const cell = this.cell(teamId, inject, key);
        return this.text.history + (cell ? " (" + this.text.version + cell.version + ")" : "");
      },

      hasGuidance(inject) {
        return Object.keys(inject.guidance || {}).length > 0;
      },

      guidanceText(inject, key) {
        return (inject.guidance || {})[key] || "";
      },

      slowest(inject) {
        let most = 0;
        for (const sub of Object.values(inject.submissions)) most = Math.max(most, sub.elapsed_s);
        return most;
      },

      barStyle(teamId, inject) {
        const sub = inject.submissions[teamId];
        const most = this.slowest(inject);
        const width = sub && most > 0 ? Math.max(2, Math.round((sub.elapsed_s / most) * 100)) : 0;
        return { width: width + "%" };
      },

      barClass(teamId, inject) {
        const sub = inject.submissions[teamId];
        if (!sub) return "missing";
        return inject.time_limit_s && sub.elapsed_s > inject.time_limit_s ? "over" : "";
      },

      timingText(teamId, inject) {
        const sub = inject.submissions[teamId];
        if (!sub) return this.text.not_submitted;
        return (sub.elapsed_s / 60).toFixed(1) + " " + this.text.minutes;
      },

      async showHistory(event) {
        const { team, inject, field } = event.currentTarget.dataset;
        const url = "/api/teams/" + encodeURIComponent(team) + "/responses/" + encodeURIComponent(inject) +
          "/" + encodeURIComponent(field) + "/revisions";
        try {
          const rows = await api("GET", url);
          const found = this.injects.find((i) => i.id === inject);
          this.history = {
            open: true,
            title: this.text.history_of + ": " + this.teamName(team) + " · " + (found ? "No." + found.position : "") + " · " + this.fieldLabel(field),
            rows,
          };
          this.$nextTick(() => this.$refs.history.focus());
        } catch (error) {
          this.flash = error.message;
        }
      },

      closeHistory() {
        this.history = { open: false, title: "", rows: [] };
      },

      revisionMeta(rev) {
        const when = new Date(rev.created_at);
        return this.text.version + rev.version + " · " + rev.author + " · " + (isNaN(when) ? "" : when.toLocaleTimeString());
      },

      ratingLabel(row) {
        return this.text.rating + ": " + this.teamName(row.team_id) + " " + row.label;
      },

      commentLabel(row) {
        return this.text.comment + ": " + this.teamName(row.team_id) + " " + row.label;
      },

      isRating(index, value) {
        return this.ratings[index] && this.ratings[index].rating === value;
      },

      isStatus(index, value) {
        return this.plan[index] && this.plan[index].status === value;
      },

      ratingChanged(event) {
        const { index, key } = event.currentTarget.dataset;
        this.ratings[Number(index)][key] = event.currentTarget.value;
        this.saveMessage = "";
      },

      planChanged(event) {
        const { index, key } = event.currentTarget.dataset;
        this.plan[Number(index)][key] = event.currentTarget.value;
        this.saveMessage = "";
      },

      addRow() {
        this.plan.push({ key: nextKey++, issue: "", action: "", owner: "", due_date: "", status: "open" });
      },

      removeRow(event) {
        this.plan.splice(Number(event.currentTarget.dataset.index), 1);
        this.saveMessage = "";
      },

      lines(text) {
        return text.split("\n").map((line) => line.trim()).filter(Boolean);
      },

      async save() {
        const body = {
          ratings: this.ratings
            .filter((row) => row.rating || row.comment.trim())
            .map((row) => ({ team_id: row.team_id, inject_id: row.inject_id, rating: row.rating || null, comment: row.comment })),
          strengths: this.lines(this.strengthsText),
          areas_for_improvement: this.lines(this.areasText),
          improvement_plan: this.plan
            .filter((item) => item.issue.trim())
            .map((item) => ({
              issue: item.issue, action: item.action, owner: item.owner, due_date: item.due_date || null, status: item.status,
            })),
        };
        try {
          const saved = await api("PUT", "/api/exercises/" + encodeURIComponent(this.exerciseId) + "/evaluation", body);
          this.fillEvaluation(saved);
          this.saveMessage = this.text.saved;
        } catch (error) {
          this.saveMessage = this.text.error + error.message;
        }
      },
    };
  });
});

// The scenario import page: upload the workbook, then list the new scenarios or say what is wrong.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("import-form");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector("[data-error]");
    const result = document.getElementById("import-result");
    error.textContent = "";
    result.textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch("/api/scenarios/import", {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        body: new FormData(form),
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) {
        error.textContent = (data && data.detail) || response.statusText;
        return;
      }
      const heading = document.createElement("p");
      heading.textContent = form.dataset.done + " " + data.set;
      const list = document.createElement("ol");
      for (const scenario of data.scenarios) {
        const item = document.createElement("li");
        item.value = scenario.no;
        item.textContent = scenario.title.ja;
        list.appendChild(item);
      }
      result.append(heading, list);
      form.reset();
    } finally {
      button.disabled = false;
    }
  });
});
