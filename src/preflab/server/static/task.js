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
      order: responses.map(function (r) { return r.dataset.rid; }),
      spans: spans
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
    restoreSpans(draft.spans);
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

  // ---- span flags: select text inside a response, flag it with a label.
  // Offsets count Unicode code points of the response's original text (not of the rendered
  // HTML): the rendered characters are aligned to the original text once per response.
  var spansOn = form.dataset.spans === "on";
  var spanField = document.getElementById("spans-field");
  var spanCfg = { labels: [], texts: {} };
  var spans = [];  // {response_id, start, end, label, text}
  var pending = null;  // the span of the last selection, kept while a button takes focus
  var maps = {};
  if (spansOn) {
    try { spanCfg = JSON.parse(document.getElementById("span-config").textContent); } catch (e) { spansOn = false; }
  }
  function isSpace(c) { return /^\s$/.test(c); }
  function cardOf(rid) { return responses.filter(function (r) { return r.dataset.rid === rid; })[0] || null; }
  function mapOf(card) {
    var rid = card.dataset.rid;
    if (maps[rid]) return maps[rid];
    var el = card.querySelector(".response-text");
    var srcText = spanCfg.texts[rid] || "";
    var src = Array.from(srcText);
    var chars = [];
    var walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    var node;
    while ((node = walker.nextNode())) {
      var s = node.nodeValue, i = 0;
      while (i < s.length) {
        var len = s.codePointAt(i) > 0xffff ? 2 : 1;
        chars.push({ node: node, offset: i, len: len, ch: s.substr(i, len) });
        i += len;
      }
    }
    // greedy alignment: rendered text is (nearly) a subsequence of the markdown source
    var map = new Array(chars.length), j = 0;
    for (var k = 0; k < chars.length; k++) {
      var c = chars[k].ch;
      map[k] = -1;
      if (isSpace(c)) {
        if (j < src.length && isSpace(src[j])) { map[k] = j; j++; }
        continue;
      }
      for (var p = j; p < src.length && p < j + 400; p++) {
        if (src[p] === c) { map[k] = p; j = p + 1; break; }
      }
    }
    maps[rid] = { rid: rid, el: el, srcText: srcText, src: src, chars: chars, map: map };
    return maps[rid];
  }
  function closestCard(node) {
    while (node && node !== document.body) {
      if (node.nodeType === 1 && node.classList.contains("response")) return node;
      node = node.parentNode;
    }
    return null;
  }
  function findNear(srcText, quote, approx) {
    var best = -1, bestD = Infinity, i = srcText.indexOf(quote), tries = 0;
    while (i >= 0 && tries++ < 2000) {
      var cp = Array.from(srcText.slice(0, i)).length, d = Math.abs(cp - approx);
      if (d < bestD) { bestD = d; best = cp; }
      i = srcText.indexOf(quote, i + 1);
    }
    return best;
  }
  function selectionSpan() {
    var sel = window.getSelection();
    if (!spansOn || !sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
    var range = sel.getRangeAt(0);
    var card = closestCard(range.commonAncestorContainer);
    if (!card) return null;
    var m = mapOf(card), ks = [];
    for (var k = 0; k < m.chars.length; k++) {
      var ch = m.chars[k];
      if (range.comparePoint(ch.node, ch.offset) === 0 && range.comparePoint(ch.node, ch.offset + ch.len) === 0) ks.push(k);
    }
    while (ks.length && isSpace(m.chars[ks[0]].ch)) ks.shift();
    while (ks.length && isSpace(m.chars[ks[ks.length - 1]].ch)) ks.pop();
    var mapped = ks.map(function (k) { return m.map[k]; }).filter(function (p) { return p >= 0; });
    if (!mapped.length) return null;
    var quote = ks.map(function (k) { return m.chars[k].ch; }).join("");
    var start = findNear(m.srcText, quote, mapped[0]), end;
    if (start >= 0) end = start + Array.from(quote).length;
    else { start = mapped[0]; end = mapped[mapped.length - 1] + 1; }
    return { response_id: m.rid, start: start, end: end, text: m.src.slice(start, end).join("") };
  }
  function domRange(sp) {
    var card = cardOf(sp.response_id);
    if (!card) return null;
    var m = mapOf(card), first = -1, last = -1;
    for (var k = 0; k < m.map.length; k++) {
      if (m.map[k] >= sp.start && m.map[k] < sp.end) { if (first < 0) first = k; last = k; }
    }
    if (first < 0) return null;
    var r = document.createRange();
    r.setStart(m.chars[first].node, m.chars[first].offset);
    r.setEnd(m.chars[last].node, m.chars[last].offset + m.chars[last].len);
    return r;
  }
  function paint() {
    if (!window.CSS || !CSS.highlights || typeof Highlight === "undefined") return;
    var groups = [new Highlight(), new Highlight(), new Highlight()];
    spans.forEach(function (sp) {
      var r = domRange(sp);
      if (r) groups[Math.max(0, spanCfg.labels.indexOf(sp.label)) % 3].add(r);
    });
    groups.forEach(function (g, i) { CSS.highlights.set("preflab-span-" + i, g); });
  }
  function renderSpans() {
    Array.prototype.forEach.call(document.querySelectorAll(".span-list"), function (ul) {
      ul.textContent = "";
      spans.forEach(function (sp) {
        if (sp.response_id !== ul.dataset.rid) return;
        var li = document.createElement("li");
        li.className = "span-item";
        li.dataset.start = String(sp.start);
        li.dataset.end = String(sp.end);
        var tag = document.createElement("span");
        tag.className = "span-tag";
        tag.textContent = sp.label;
        var q = document.createElement("q");
        q.textContent = sp.text.length > 200 ? sp.text.slice(0, 200) + "…" : sp.text;
        var pos = document.createElement("span");
        pos.className = "muted";
        pos.textContent = " (" + sp.start + "–" + sp.end + ") ";
        var rm = document.createElement("button");
        rm.type = "button";
        rm.className = "link span-remove";
        rm.textContent = "Remove";
        rm.setAttribute("aria-label", "Remove flag " + sp.label + ": " + q.textContent);
        rm.addEventListener("click", function () {
          spans.splice(spans.indexOf(sp), 1);
          spansChanged();
          say("Flag removed");
        });
        li.appendChild(tag); li.appendChild(document.createTextNode(": ")); li.appendChild(q);
        li.appendChild(pos); li.appendChild(rm);
        ul.appendChild(li);
      });
    });
  }
  function spansChanged(noSave) {
    if (!spansOn) return;
    var order = responses.map(function (r) { return r.dataset.rid; });
    spans.sort(function (a, b) {
      return (order.indexOf(a.response_id) - order.indexOf(b.response_id)) || (a.start - b.start) || (a.end - b.end);
    });
    spanField.value = JSON.stringify(spans);
    renderSpans();
    paint();
    if (!noSave) save();
  }
  function flagSelection(label, rid) {
    var sp = selectionSpan() || pending;
    if (!sp || (rid && sp.response_id !== rid)) { say("Select text inside the response first"); return false; }
    var dup = spans.some(function (x) {
      return x.response_id === sp.response_id && x.start === sp.start && x.end === sp.end && x.label === label;
    });
    if (!dup) spans.push({ response_id: sp.response_id, start: sp.start, end: sp.end, label: label, text: sp.text });
    var sel = window.getSelection();
    if (sel) sel.removeAllRanges();
    pending = null;
    spansChanged();
    say("Flagged as " + label);
    return true;
  }
  function restoreSpans(saved) {
    if (!spansOn) return;
    spans = (saved || []).filter(function (sp) {
      var text = spanCfg.texts[sp.response_id];
      return text !== undefined && spanCfg.labels.indexOf(sp.label) >= 0 &&
        Array.from(text).slice(sp.start, sp.end).join("") === sp.text;
    });
    spansChanged(true);
  }
  if (spansOn) {
    var pendingTimer = null;
    document.addEventListener("selectionchange", function () {
      clearTimeout(pendingTimer);
      pendingTimer = setTimeout(function () { var sp = selectionSpan(); if (sp) pending = sp; }, 120);
    });
    document.addEventListener("mousedown", function (e) {
      if (!(e.target.closest && e.target.closest(".span-label"))) pending = null;
    });
    Array.prototype.forEach.call(document.querySelectorAll(".span-label"), function (btn) {
      btn.addEventListener("mousedown", function (e) { e.preventDefault(); });  // keep the selection
      btn.addEventListener("click", function () { flagSelection(btn.dataset.label, btn.dataset.rid); });
    });
    if (kind === "ranking") {  // over the text, the mouse selects; elsewhere it drags the card
      responses.forEach(function (card) {
        var text = card.querySelector(".response-text");
        text.addEventListener("mouseenter", function () { card.draggable = false; });
        text.addEventListener("mouseleave", function (e) { if (!e.buttons) card.draggable = true; });
      });
      document.addEventListener("mouseup", function (e) {
        responses.forEach(function (c) { if (!c.querySelector(".response-text").contains(e.target)) c.draggable = true; });
      });
    }
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
  if (skipDialog) {  // the live chat page has no skip
    document.getElementById("skip-open").addEventListener("click", openSkip);
    document.getElementById("skip-cancel").addEventListener("click", function () { skipDialog.close(); });
  }
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
    if (e.shiftKey && key.indexOf("Arrow") === 0) return;  // shift+arrows extend a text selection
    if (spansOn && key === "Escape") { var cur = window.getSelection(); if (cur) cur.removeAllRanges(); pending = null; return; }
    if (spansOn && /^[1-9]$/.test(key) && selectionSpan()) {
      // with text selected inside a response, a digit flags it with that label
      e.preventDefault();
      var lab = spanCfg.labels[parseInt(key, 10) - 1];
      if (lab) flagSelection(lab, null);
      return;
    }
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
    if (spansOn) spanField.value = JSON.stringify(spans);
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
