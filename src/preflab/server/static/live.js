// preflab live pages: follow a conversation's server-sent events, keys, drafts of the next
// message. Model text reaches the page only as the server's sanitized HTML (the "html" of an
// event, or a server-rendered part of the page); this script never builds HTML from text.
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }
  function isTyping(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" ||
      (tag === "INPUT" && /^(text|search|password|email|number)$/.test(el.type));
  }
  function store(key, value) {
    try {
      if (value === null || value === "") localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch (e) { /* storage off: drafts do not persist */ }
  }
  function load(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  // ---- the start page: Ctrl+Enter starts
  var startForm = $("start-form");
  if (startForm) {
    startForm.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        startForm.requestSubmit($("start-live"));
      }
    });
  }

  var root = $("live");
  if (!root) return;
  var cid = root.dataset.cid;
  var isArena = root.dataset.mode === "arena";
  var isOpen = root.dataset.status === "open";
  var statusEl = $("live-status");
  var help = $("help-dialog");
  var current = $("current-turn");
  var source = null;
  var taskJsLoaded = false;
  var swapping = false;

  function say(text) { if (statusEl) statusEl.textContent = text; }
  function state() { return $("turn-state"); }
  function curTurn() { var s = state(); return s ? parseInt(s.dataset.turn, 10) : NaN; }
  function curRound() { var s = state(); return s ? parseInt(s.dataset.round, 10) : NaN; }
  function isReady() { var s = state(); return !!s && s.dataset.ready === "1"; }
  function card(turn, slot) { return $("cand-" + turn + "-" + slot); }
  function nameOf(el) {
    var h = el && el.querySelector("h2");
    return h ? h.textContent.split(":")[0].trim() : "answer";
  }

  var STATUS = {
    pending: "Waiting for the model…",
    streaming: "Generating…",
    retrying: "Retrying…",
    complete: "Done",
    failed: "Failed — press r to retry",
    broken: "Stopped mid-answer — press r to retry",
    cancelled: "Stopped — press r to retry",
    duplicate: "Same text as another answer — sampling again…"
  };
  var RETRYABLE = { failed: 1, broken: 1, cancelled: 1 };

  // Update one candidate card: status line, retry button, busy state; html is the server's
  // sanitized HTML of the text so far (replaces the card's text, never appended).
  function update(turn, slot, status, message, html, tokens) {
    var el = card(turn, slot);
    if (!el) return null;
    var text = $("text-" + turn + "-" + slot);
    var line = $("status-" + turn + "-" + slot);
    var retry = $("retry-" + turn + "-" + slot);
    if (html !== undefined && html !== null && text) text.innerHTML = html;
    if (status) {
      el.dataset.status = status;
      el.className = el.className.replace(/\bstatus-\S+/, "status-" + status);
      el.setAttribute("aria-busy", status === "complete" || RETRYABLE[status] ? "false" : "true");
      if (retry) retry.hidden = !RETRYABLE[status];
    }
    if (line) {
      var s = el.dataset.status;
      var words = STATUS[s] || s;
      if (s === "failed" || s === "broken" || s === "cancelled") {
        words = (s === "broken" ? "Stopped mid-answer" : s === "failed" ? "Failed" : "Stopped") +
          (message ? ": " + message : "") + " — press r to retry " + nameOf(el).toLowerCase();
      } else if (message) {
        words = message.charAt(0).toUpperCase() + message.slice(1);
      }
      if (tokens) words += " · " + tokens + " tokens";
      line.textContent = words;
    }
    return el;
  }

  function isCurrent(d) {
    if (isArena) return d.turn === curTurn();
    return d.turn === curTurn() && d.round === curRound();
  }
  function isNewer(d) {
    return d.turn > curTurn() || (d.turn === curTurn() && d.round > curRound());
  }

  // A reload that keeps failing must not loop: at most 3 within a minute.
  function reloadOnce(why) {
    var key = "preflab-live-reloads:" + cid;
    var now = Date.now(), marks = [];
    try { marks = JSON.parse(sessionStorage.getItem(key) || "[]"); } catch (e) { marks = []; }
    marks = marks.filter(function (t) { return now - t < 60000; });
    if (marks.length >= 3) { say(why + " — reload the page to see it."); return; }
    marks.push(now);
    try { sessionStorage.setItem(key, JSON.stringify(marks)); } catch (e) { /* ignore */ }
    window.location.reload();
  }

  // ---- the current turn: swapped in from the server when it becomes ready
  function swapCurrent() {
    if (swapping) return;
    if (taskJsLoaded) { reloadOnce("The turn changed"); return; }
    swapping = true;
    var keepFocus = document.activeElement && document.activeElement.id;
    fetch(root.dataset.current, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        current.innerHTML = html;  // server-rendered; model text in it went through the sanitizer
        swapping = false;
        afterRender(true);
        if (keepFocus && $(keepFocus)) $(keepFocus).focus();
      })
      .catch(function () { swapping = false; reloadOnce("The answers are ready"); });
  }

  function afterRender(swapped) {
    if (isReady()) {
      if (source && !isArena) { source.close(); source = null; }
      if (isArena && source) { source.close(); source = null; }
      enableMessage();
      if ($("task-form")) loadTaskJs();
      else root.dataset.controls = "ready";
      if (swapped) say(isArena ? "Both answers are complete: vote, or keep chatting." :
        "All answers are complete: judge them (press ? for keys).");
    }
    initVote();
  }

  function loadTaskJs() {
    if (taskJsLoaded) return;
    taskJsLoaded = true;
    var s = document.createElement("script");
    s.src = "/static/task.js";
    s.onload = initTurnForm;
    document.body.appendChild(s);
  }

  // ---- server-sent events
  function turnsOf(conv) { return (conv && conv.turns) || []; }
  function turnNo(t) { return t.turn && typeof t.turn === "object" ? t.turn.turn : t.turn; }
  function roundNo(t) { return t.turn && typeof t.turn === "object" ? t.turn.round : t.round; }
  function turnStatus(t) { return t.turn && typeof t.turn === "object" ? t.turn.status : t.status; }

  function onSnapshot(data) {
    var conv = data.conversation || {};
    var c = conv.conversation || conv;
    if (c.status && c.status !== "open") { reloadOnce("The conversation changed"); return; }
    var turns = turnsOf(conv);
    if (!turns.length) return;
    var last = turns[turns.length - 1];
    var d = { turn: turnNo(last), round: roundNo(last) };
    if (isNewer(d)) { reloadOnce("The conversation went on in another window"); return; }
    if (!isCurrent(d)) return;
    (last.candidates || []).forEach(function (cand) {
      var el = card(d.turn, cand.slot);
      if (!el) return;
      if (cand.status === "complete") {
        if (el.dataset.status !== "complete") {
          update(d.turn, cand.slot, "complete", null, cand.html, cand.completion_tokens || cand.tokens);
        }
      } else if (el.dataset.status !== "complete") {
        update(d.turn, cand.slot, cand.status, cand.error || null);
      }
    });
    if (turnStatus(last) === "ready" && !isReady()) swapCurrent();
    else announceFailures();
  }

  // Say which answers need a retry (after a load or a snapshot that found them stopped).
  function announceFailures() {
    var failed = Array.prototype.filter.call(document.querySelectorAll("#current-turn .candidate"),
      function (el) { return RETRYABLE[el.dataset.status] && isOpen; });
    if (!failed.length) return;
    var names = failed.map(function (el) { return nameOf(el).toLowerCase(); });
    say((names.length > 1 ? "Answers " + names.join(" and ") + " stopped" :
      "Answer " + names[0] + " stopped") + " — press r to retry " + names[0] + ".");
  }

  function onCandidate(d) {
    if (isNewer(d)) { reloadOnce("New answers were asked for in another window"); return; }
    if (!isCurrent(d)) return;
    var el = card(d.turn, d.slot);
    if (el && el.dataset.status === "complete") return;
    update(d.turn, d.slot, d.status, d.message);
    if (RETRYABLE[d.status] && d.status !== "cancelled" && el) {
      say(nameOf(el) + ": " + (d.status === "broken" ? "stopped mid-answer" : "failed") +
        (d.message ? " (" + d.message + ")" : "") + " — press r to retry " + nameOf(el).toLowerCase());
    } else if (d.status === "retrying" && el && d.message) {
      say(nameOf(el) + ": " + d.message);
    }
  }

  function onDelta(d) {
    if (!isCurrent(d)) return;
    var el = card(d.turn, d.slot);
    if (!el || el.dataset.status === "complete") return;
    update(d.turn, d.slot, "streaming", null, d.html, d.tokens);
  }

  function onComplete(d) {
    if (!isCurrent(d)) return;
    update(d.turn, d.slot, "complete", null, d.html, d.tokens);
  }

  function onError(d) {
    if (!isCurrent(d)) return;
    var el = card(d.turn, d.slot);
    var status = el && RETRYABLE[el.dataset.status] ? el.dataset.status : "failed";
    update(d.turn, d.slot, status, d.message);
    if (el) say(nameOf(el) + ": " + d.message + " — press r to retry " + nameOf(el).toLowerCase());
  }

  function onReady(d) {
    if (isNewer(d)) { reloadOnce("The conversation went on in another window"); return; }
    if (isCurrent(d) && !isReady()) swapCurrent();
  }

  function connect() {
    if (!window.EventSource || !isOpen || !root.dataset.events) return;
    if (isReady()) return;  // nothing more will come for this turn
    source = new EventSource(root.dataset.events);
    var handlers = { snapshot: onSnapshot, candidate: onCandidate, delta: onDelta,
                     complete: onComplete, error: onError, ready: onReady };
    Object.keys(handlers).forEach(function (name) {
      source.addEventListener(name, function (ev) {
        if (!ev.data) return;  // the EventSource's own "error" (connection lost) has none
        var data;
        try { data = JSON.parse(ev.data); } catch (e) { return; }
        handlers[name](data);
      });
    });
    source.addEventListener("open", function () {
      if (statusEl && /^Connection/.test(statusEl.textContent)) { say(""); announceFailures(); }
    });
    source.onerror = function () {
      // the server's own "error" events (a failed answer) reach this handler too: skip them
      if (!source || source.readyState === EventSource.OPEN) return;
      if (source.readyState === EventSource.CLOSED) say("Connection closed — reload the page to go on.");
      else say("Connection lost — reconnecting…");
    };
  }

  // ---- the next message: kept in localStorage until it is sent
  var next = $("next-message");
  var nextKey = "preflab-live-next:" + cid;
  if (next) {
    var saved = load(nextKey);
    if (saved && !next.value) next.value = saved;
    next.addEventListener("input", function () { store(nextKey, next.value); });
  }
  function enableMessage() {
    var send = $("send-message");
    if (send && isReady() && next && !next.disabled) send.disabled = false;
  }

  // ---- the judgment form of a ready chat turn (task.js drives its controls and draft)
  function texts() {
    var el = $("live-texts");
    if (!el) return {};
    try { return JSON.parse(el.textContent); } catch (e) { return {}; }
  }
  function form() { return $("task-form"); }
  function responseIds() {
    return Array.prototype.map.call(document.querySelectorAll("#responses .response"),
      function (r) { return r.dataset.rid; });
  }
  function checked(name) {
    var el = form() && form().querySelector('input[name="' + name + '"]:checked');
    return el ? el.value : "";
  }
  // The answer the judgment prefers, as collect.live reads it (null when it names none).
  function winner() {
    var f = form();
    if (!f) return null;
    var explicit = checked("continue_with");
    if (explicit) return explicit;
    var kind = f.dataset.kind, ids = responseIds();
    if (kind === "pairwise") {
      var choice = checked("choice"), scale = parseInt(f.dataset.scale || "0", 10);
      var v = parseInt(choice, 10);
      if (!v) return null;
      var mid = (scale + 1) / 2;
      if (v < mid) return ids[0];
      if (v > mid) return ids[ids.length - 1];
      return null;
    }
    if (kind === "ranking") {
      var best = null, bestRank = Infinity, tied = false;
      ids.forEach(function (rid) {
        var sel = f.querySelector('select[name="rank_' + rid + '"]');
        var r = sel ? parseInt(sel.value, 10) : NaN;
        if (r < bestRank) { bestRank = r; best = rid; tied = false; }
        else if (r === bestRank) tied = true;
      });
      return tied ? null : best;
    }
    if (kind === "rating") {
      var top = null, topMean = -Infinity, tie = false;
      ids.forEach(function (rid) {
        var vals = Array.prototype.map.call(
          f.querySelectorAll('input[name^="score__' + rid + '__"]:checked'),
          function (i) { return parseFloat(i.value); });
        if (!vals.length) return;
        var mean = vals.reduce(function (a, b) { return a + b; }, 0) / vals.length;
        if (mean > topMean) { topMean = mean; top = rid; tie = false; }
        else if (mean === topMean) tie = true;
      });
      return tie ? null : top;
    }
    return null;
  }
  function slotNameOf(rid) {
    var el = document.querySelector('#responses .response[data-rid="' + rid + '"]');
    return nameOf(el);
  }
  function setContinue(rid) {
    var f = form();
    var radio = f && f.querySelector('input[name="continue_with"][value="' + rid + '"]');
    if (radio) { radio.checked = true; radio.dispatchEvent(new Event("change", { bubbles: true })); }
  }
  function openEdit() {
    var area = $("edit-area"), box = $("edit-text");
    if (!area || !box) return;
    var rid = winner();
    if (!rid) {
      say("Choose the answer to edit first: judge, or press c to pick the answer to continue with.");
      var first = document.querySelector('#continue-with input[name="continue_with"]');
      if (first) first.focus();
      return;
    }
    setContinue(rid);  // the edit belongs to this answer, whatever the judgment says later
    if (box.dataset.of !== rid || !box.value) box.value = texts()[rid] || "";
    box.dataset.of = rid;
    box.disabled = false;
    area.hidden = false;
    $("edit-of").textContent = "Editing " + slotNameOf(rid) + ".";
    box.focus();
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function discardEdit() {
    var area = $("edit-area"), box = $("edit-text");
    if (!area || !box) return;
    box.value = "";
    box.disabled = true;
    area.hidden = true;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    say("Edit discarded");
  }
  function cycleContinue() {
    var radios = Array.prototype.slice.call(document.querySelectorAll('#continue-with input[name="continue_with"]'));
    if (!radios.length) return;
    var i = radios.findIndex(function (r) { return r.checked; });
    var nextRadio = radios[(i + 1) % radios.length];
    nextRadio.checked = true;
    nextRadio.focus();
    nextRadio.dispatchEvent(new Event("change", { bubbles: true }));
  }
  function initTurnForm() {
    var box = $("edit-text");
    if (box && box.value) {  // a restored draft had an edit: show it
      var rid = checked("continue_with");
      box.dataset.of = rid;
      box.disabled = false;
      $("edit-area").hidden = false;
      if (rid) $("edit-of").textContent = "Editing " + slotNameOf(rid) + ".";
    }
    if ($("edit-open")) $("edit-open").addEventListener("click", openEdit);
    if ($("edit-discard")) $("edit-discard").addEventListener("click", discardEdit);
    root.dataset.controls = "ready";  // the judgment keys work from now on
  }

  // A send without a next message would end the conversation: ask for the message instead.
  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f && f.id === "task-form") {
      var submitter = e.submitter;
      var isDone = submitter && submitter.id === "done";
      var state_ = state();
      if (!isDone && next && state_ && state_.dataset.canContinue === "1" && !next.value.trim()) {
        e.preventDefault();
        e.stopPropagation();
        next.focus();
        say("Write your next message (or press d to finish the conversation).");
        return;
      }
      store(nextKey, null);
    } else if (f && f.id === "message-form") {
      if (!next || !next.value.trim()) { e.preventDefault(); say("Write a message first."); return; }
      store(nextKey, null);
      if ($("send-message")) $("send-message").disabled = true;
    } else if (f && f.id === "vote-form") {
      if (f.dataset.sent) { e.preventDefault(); return; }  // a double press votes once
      f.dataset.sent = "1";
      say("Voting…");
    } else if (f && (f.id === "regenerate-form" || f.id === "finish-form" ||
                     f.classList.contains("retry-form"))) {
      if (f.dataset.sent) { e.preventDefault(); return; }  // a double press asks once
      f.dataset.sent = "1";
    }
  }, true);

  // ---- arena vote: one submission id per conversation, so a resend is the same vote
  function initVote() {
    var vf = $("vote-form");
    if (!vf) return;
    var key = "preflab-vote:" + cid;
    var id = load(key) || newId();
    store(key, id);
    vf.elements.submission_id.value = id;
  }

  // ---- keys
  function clickIf(el) { if (el && !el.disabled && !el.hidden) { el.click(); return true; } return false; }
  function firstRetry() {
    var btns = Array.prototype.filter.call(document.querySelectorAll(".retry-form"),
      function (f) { return !f.hidden; });
    return btns.length ? btns[0] : null;
  }
  document.addEventListener("keydown", function (e) {
    if (help && help.open && e.key !== "?" && e.key !== "Escape") return;
    var key = e.key;
    if (key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (isArena) {
        var mf = $("message-form");
        if (mf && !$("send-message").disabled) mf.requestSubmit($("send-message"));
        else say("Wait until both answers are complete.");
      } else if (form()) {
        form().requestSubmit($("submit"));
      } else {
        say("Wait until every answer is complete, then judge them.");
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (isTyping(e.target)) {
      if (key === "Escape" && !form()) e.target.blur();  // task.js blurs on its page
      return;
    }
    if (key === "?") {
      if (form()) return;  // task.js toggles the same dialog
      e.preventDefault();
      if (help.open) help.close(); else help.showModal();
      return;
    }
    if (key === "r") {
      var rf = firstRetry();
      if (rf) { e.preventDefault(); rf.requestSubmit(); }
      return;
    }
    if (key === "m" && next && !next.disabled) { e.preventDefault(); next.focus(); return; }
    if (isArena) {
      var map = { a: "vote-a", b: "vote-b", t: "vote-tie", n: "vote-both-bad" };
      if (map[key]) {
        e.preventDefault();
        if (!clickIf($(map[key]))) say("You can vote when both answers are complete.");
      }
      return;
    }
    if (key === "g") {
      var gf = $("regenerate-form");
      if (gf) { e.preventDefault(); say("Asking for new answers…"); gf.requestSubmit(); }
      return;
    }
    if (key === "e") { if (form()) { e.preventDefault(); openEdit(); } return; }
    if (key === "c") { if (form()) { e.preventDefault(); cycleContinue(); } return; }
    if (key === "d") {
      e.preventDefault();
      if ($("done")) form().requestSubmit($("done"));
      else if (form()) form().requestSubmit($("submit"));  // the last turn: submit finishes
      else say("Wait until every answer is complete, judge them, then press d.");
    }
  });
  if ($("help-close")) $("help-close").addEventListener("click", function () { help.close(); });

  afterRender(false);
  announceFailures();
  connect();
})();
