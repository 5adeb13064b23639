// The lead page's only script: keep the analyst's claim alive while they work, and keyboard shortcuts
// (Esc asks before it releases the claim: a stray key press must not hand the lead back).
// Served from /static under `script-src 'self'`; it reads no crawled text and writes none into the page.
"use strict";

(function () {
  const lease = document.getElementById("lease");
  if (!lease) {
    return;
  }
  const leadId = lease.dataset.lead;
  const timeZone = lease.dataset.timezone;  // the settings' display zone, as the server shows times
  const csrf = document.querySelector("meta[name=csrf-token]").content;
  const RENEW_EVERY_MS = 60 * 1000;
  const RELEASE_QUESTION = "放回队列？此线索将不再由您认领，其他分析员可以认领。";
  let workedSinceRenewal = true;

  // Renew only while the analyst is actually working, so an abandoned tab lets the claim expire.
  for (const event of ["keydown", "input", "click", "scroll"]) {
    document.addEventListener(event, () => { workedSinceRenewal = true; }, { passive: true });
  }

  async function renew() {
    if (!workedSinceRenewal) {
      return;
    }
    workedSinceRenewal = false;
    const response = await fetch(`/leads/${leadId}/renew`, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    const answer = await response.json();
    const until = document.getElementById("lease-until");
    if (answer.held && answer.claim_expires_at) {
      until.textContent = new Date(answer.claim_expires_at).toLocaleTimeString("zh-CN", { timeZone });
    } else {
      until.textContent = "已失效，请刷新页面";
    }
  }
  setInterval(renew, RENEW_EVERY_MS);

  function typing(target) {
    return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement ||
      target instanceof HTMLSelectElement;
  }

  const shortcuts = {
    v: () => document.getElementById("verify-button").focus(),
    r: () => document.getElementById("reject-reason").focus(),
    m: () => document.getElementById("merge-into").focus(),
    n: () => document.getElementById("note-text").focus(),
  };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (event.key === "Escape") {
      if (typing(event.target)) {
        event.target.blur();
      } else if (window.confirm(RELEASE_QUESTION)) {
        document.getElementById("release-form").requestSubmit();
      }
      return;
    }
    const action = shortcuts[event.key];
    if (action && !typing(event.target)) {
      event.preventDefault();
      action();
    }
  });
})();
