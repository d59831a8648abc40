// preflab task page: keyboard shortcuts, drafts in localStorage, drag ranking, one submit.
(function () {
  "use strict";
  var form = document.getElementById("task-form");
  if (!form) return;
  var aid = form.dataset.assignment;
  var kind = form.dataset.kind;
  var scale = parseInt(form.dataset.scale || "0", 10);
  var draftKey = "preflab-draft:" + aid;
  var statusEl = document.getElementById("draft-status");
  var help = document.getElementById("help-dialog");
  var skipDialog = document.getElementById("skip-dialog");
  var responses = Array.prototype.slice.call(document.querySelectorAll("#responses .response"));
  var submitting = false;

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }
  function say(text) { if (statusEl) statusEl.textContent = text; }

  function collect() {
    var fields = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === "hidden" || el.name === "csrf_token") return;
      if (el.type === "radio") { if (el.checked) fields[el.name] = el.value; }
      else if (el.type === "checkbox") {
        fields[el.name] = fields[el.name] || [];
        if (el.checked) fields[el.name].push(el.value || "on");
      } else fields[el.name] = el.value;
    });
    return fields;
  }
  function apply(fields) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || !(el.name in fields) || el.type === "hidden") return;
      var v = fields[el.name];
      if (el.type === "radio") el.checked = (v === el.value);
      else if (el.type === "checkbox") el.checked = Array.isArray(v) && v.indexOf(el.value || "on") >= 0;
      else el.value = v;
    });
  }
  function save() {
    var draft = {
      submission_id: form.elements.submission_id.value,
      started_at_ms: form.elements.started_at_ms.value,
      fields: collect(),
      order: responses.map(function (r) { return r.dataset.rid; })
    };
    try { localStorage.setItem(draftKey, JSON.stringify(draft)); say("Draft saved"); } catch (e) { say(""); }
  }
  function restore() {
    var raw = null;
    try { raw = localStorage.getItem(draftKey); } catch (e) { raw = null; }
    if (!raw) {
      form.elements.submission_id.value = newId();
      form.elements.started_at_ms.value = String(Date.now());
      save();
      say("");
      return;
    }
    var draft = JSON.parse(raw);
    form.elements.submission_id.value = draft.submission_id || newId();
    form.elements.started_at_ms.value = draft.started_at_ms || String(Date.now());
    if (draft.order && kind === "ranking") reorder(draft.order);
    apply(draft.fields || {});
    say("Draft restored");
  }
  // forget drafts of tasks submitted earlier
  try {
    for (var i = localStorage.length - 1; i >= 0; i--) {
      var k = localStorage.key(i);
      if (k && k.indexOf("preflab-submitted:") === 0) {
        localStorage.removeItem("preflab-draft:" + k.slice("preflab-submitted:".length));
        localStorage.removeItem(k);
      }
    }
  } catch (e) { /* storage off: drafts simply do not persist */ }

  // ---- ranking: focus, digits, drag
  var container = document.getElementById("responses");
  function reorder(ids) {
    ids.forEach(function (id) {
      var el = responses.filter(function (r) { return r.dataset.rid === id; })[0];
      if (el) container.appendChild(el);
    });
    responses = Array.prototype.slice.call(container.querySelectorAll(".response"));
  }
  function focusedResponse() {
    var a = document.activeElement;
    while (a && a !== document.body) {
      if (a.classList && a.classList.contains("response")) return a;
      a = a.parentElement;
    }
    return null;
  }
  function moveFocus(step) {
    var cur = focusedResponse();
    var idx = cur ? responses.indexOf(cur) : -1;
    var next = responses[(idx + step + responses.length) % responses.length];
    if (next) next.focus();
  }
  function setRank(card, rank) {
    var sel = card.querySelector("select");
    if (sel && rank >= 1 && rank <= responses.length) { sel.value = String(rank); save(); }
  }
  if (kind === "ranking") {
    var dragged = null;
    responses.forEach(function (card) {
      card.addEventListener("dragstart", function (e) {
        dragged = card; card.classList.add("dragging");
        e.dataTransfer.effectAllowed = "move";
        e.dataTransfer.setData("text/plain", card.dataset.rid);
      });
      card.addEventListener("dragend", function () { card.classList.remove("dragging"); dragged = null; });
      card.addEventListener("dragover", function (e) { e.preventDefault(); });
      card.addEventListener("drop", function (e) {
        e.preventDefault();
        if (!dragged || dragged === card) return;
        var rect = card.getBoundingClientRect();
        var after = (e.clientX - rect.left) > rect.width / 2 || (e.clientY - rect.top) > rect.height * 0.75;
        container.insertBefore(dragged, after ? card.nextSibling : card);
        responses = Array.prototype.slice.call(container.querySelectorAll(".response"));
        responses.forEach(function (r, i) { setRank(r, i + 1); });
      });
    });
  }

  // ---- keys
  function isTyping(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "TEXTAREA" || (tag === "INPUT" && /^(text|search|password|email|number)$/.test(el.type));
  }
  function pick(name, value) {
    var el = form.querySelector('input[name="' + name + '"][value="' + value + '"]');
    if (el) { el.checked = true; el.focus(); save(); return true; }
    return false;
  }
  function toggle(el) { if (el) { el.checked = !el.checked; save(); } }
  function openSkip() {
    if (skipDialog && !skipDialog.open) {
      skipDialog.showModal();
      document.getElementById("skip-reason").focus();
    }
  }
  document.getElementById("skip-open").addEventListener("click", openSkip);
  document.getElementById("skip-cancel").addEventListener("click", function () { skipDialog.close(); });
  document.getElementById("help-close").addEventListener("click", function () { help.close(); });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if ((skipDialog && skipDialog.open) || (help && help.open && e.key !== "?")) return;
    var target = e.target;
    if (isTyping(target)) {
      if (e.key === "Escape") target.blur();
      return;
    }
    var key = e.key;
    if (key === "?") { e.preventDefault(); if (help.open) help.close(); else help.showModal(); return; }
    if (key === "Enter") {
      if (target && target.tagName === "BUTTON") return;  // let buttons act as buttons
      e.preventDefault(); form.requestSubmit(); return;
    }
    if (key === "s") { e.preventDefault(); openSkip(); return; }
    if (key === "f") { e.preventDefault(); toggle(document.getElementById("flag-harmful")); return; }
    if (kind === "pairwise") {
      if (/^[1-9]$/.test(key) && parseInt(key, 10) <= scale) { e.preventDefault(); pick("choice", key); return; }
      if (key === "t") {
        e.preventDefault();
        if (!pick("choice", "tie") && scale % 2 === 1) pick("choice", String((scale + 1) / 2));
        return;
      }
      if (key === "b") { e.preventDefault(); pick("choice", "both_bad"); return; }
    } else if (kind === "ranking") {
      if (key === "j" || key === "ArrowDown" || key === "ArrowRight") { e.preventDefault(); moveFocus(1); return; }
      if (key === "k" || key === "ArrowUp" || key === "ArrowLeft") { e.preventDefault(); moveFocus(-1); return; }
      if (/^[1-9]$/.test(key)) {
        var card = focusedResponse() || responses[0];
        e.preventDefault(); setRank(card, parseInt(key, 10)); return;
      }
      if (key === "b") { e.preventDefault(); toggle(document.getElementById("all-bad")); return; }
    } else if (kind === "binary") {
      if (key === "1") { e.preventDefault(); pick("label", "up"); return; }
      if (key === "2") { e.preventDefault(); pick("label", "down"); return; }
    }
  });

  form.addEventListener("input", save);
  form.addEventListener("change", save);
  form.addEventListener("submit", function (e) {
    if (kind === "ranking" && document.getElementById("all-bad").checked) {
      // "all bad" alone is a complete answer: ranks become optional
      Array.prototype.forEach.call(form.querySelectorAll("select"), function (s) { s.required = false; });
    }
    if (submitting) { e.preventDefault(); return; }  // a double press sends once
    submitting = true;
    save();
    try { localStorage.setItem("preflab-submitted:" + aid, "1"); } catch (err) { /* ignore */ }
    document.getElementById("submit").disabled = true;
    say("Submitting…");
  });
  document.getElementById("all-bad") && document.getElementById("all-bad").addEventListener("change", function () {
    var on = this.checked;
    Array.prototype.forEach.call(form.querySelectorAll("select"), function (s) { s.required = !on; });
  });
  restore();
  window.addEventListener("pageshow", function (e) {
    if (e.persisted) { submitting = false; document.getElementById("submit").disabled = false; }
  });
})();
