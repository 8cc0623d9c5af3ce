// Shared by every page: translated words, JSON requests, time formatting and the plain forms.
"use strict";

(function () {
  const strings = JSON.parse(document.body.dataset.i18n || "{}");

  function t(key, params) {
    let text = strings[key] || key;
    for (const [name, value] of Object.entries(params || {})) {
      text = text.replace("%(" + name + ")s", String(value));
    }
    return text;
  }

  // A fetch that sends JSON with the session cookie and turns errors into their sentence.
  async function api(method, url, body) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const error = new Error((data && data.detail) || response.statusText);
      error.status = response.status;
      error.code = data && data.code;
      throw error;
    }
    return data;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const pad = (n) => String(n).padStart(2, "0");
    return (h > 0 ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
  }

  function clock(iso) {
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function showError(form, message) {
    const box = form.querySelector("[data-error]");
    if (box) box.textContent = message || "";
  }

  function bindForm(id, handler) {
    const form = document.getElementById(id);
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError(form, "");
      const button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      try {
        await handler(form);
      } catch (error) {
        showError(form, error.message);
      } finally {
        if (button) button.disabled = false;
      }
    });
  }

  bindForm("login-form", async (form) => {
    await api("POST", "/api/auth/login", {
      username: form.elements.username.value.trim(),
      password: form.elements.password.value,
    });
    window.location.assign(form.dataset.next || "/exercises");
  });

  bindForm("join-form", async (form) => {
    await api("POST", "/api/join", {
      code: form.elements.code.value.trim(),
      name: form.elements.name.value.trim(),
    });
    window.location.assign("/team");
  });

  bindForm("create-form", async (form) => {
    const teams = form.elements.teams.value.split("\n").map((s) => s.trim()).filter(Boolean);
    const scenarioIds = Array.from(form.querySelectorAll("input[name=scenario_ids]:checked"), (i) => i.value);
    const created = await api("POST", "/api/exercises", {
      title: form.elements.title.value.trim(),
      teams,
      locale: form.elements.locale.value,
      scenario_ids: scenarioIds,
    });
    window.location.assign("/exercises/" + encodeURIComponent(created.id));
  });

  bindForm("add-team-form", async (form) => {
    await api("POST", "/api/exercises/" + encodeURIComponent(form.dataset.exerciseId) + "/teams", {
      name: form.elements.name.value.trim(),
    });
    window.location.reload();
  });

  document.addEventListener("click", async (event) => {
    if (!event.target.closest("[data-logout]")) return;
    await api("POST", "/api/auth/logout").catch(() => null);
    window.location.assign("/login");
  });

  window.Tabletop = { t, api, duration, clock };
})();
