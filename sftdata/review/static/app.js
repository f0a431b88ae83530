// The review page: one record at a time; every action is POSTed (and appended to feedback.jsonl)
// before the page shows it. Record text is only ever set with textContent, never parsed as HTML.
"use strict";
(function () {
  var params = new URLSearchParams(location.search);
  var token = params.get("token");
  var state = null;   // {records, labels, total, reviewed, first_unreviewed}
  var current = 0;
  var editing = false;

  function $(id) { return document.getElementById(id); }

  function api(path, body) {
    var headers = {"Accept": "application/json"};
    if (token) headers["X-Review-Token"] = token;
    var init = {headers: headers, credentials: "same-origin"};
    if (body !== undefined) {
      init.method = "POST";
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
        return data;
      });
    });
  }

  function setText(id, text) { $(id).textContent = text == null ? "" : String(text); }

  function render() {
    var total = state.total;
    setText("progress", state.reviewed + " / " + total + " reviewed");
    document.body.dataset.reviewed = String(state.reviewed);
    document.body.dataset.current = String(current);
    $("done").hidden = current < total;
    $("record").hidden = current >= total;
    setText("position", total ? "record " + Math.min(current + 1, total) + " of " + total : "no records");
    if (current >= total) { return; }
    var rec = state.records[current];
    var label = state.labels[rec.id] || {};
    setText("instruction", rec.instruction);
    $("input-box").hidden = !rec.input;
    setText("input", rec.input);
    var edited = label.output != null;
    setText("output-title", rec.output_b != null ? "Output A" : (edited ? "Output (edited)" : "Output"));
    setText("output", edited ? label.output : rec.output);
    $("b-box").hidden = rec.output_b == null;
    $("pair-actions").hidden = rec.output_b == null;
    setText("output-b", rec.output_b);
    var parts = [];
    if (label.keep === true) parts.push("kept");
    if (label.keep === false) parts.push("rejected");
    if (label.score != null) parts.push("score " + label.score);
    if (label.choice) parts.push("choice " + label.choice);
    if (edited) parts.push("edited");
    setText("status", parts.length ? parts.join(" · ") : "not reviewed");
    $("status").className = label.keep === true ? "keep" : label.keep === false ? "reject" : "";
    $("score").value = label.score != null ? label.score : "";
    var j = rec.judge || {};
    var verdict = [];
    if (j.rubric) verdict.push("judge (" + j.rubric + ")");
    if (j.score != null) verdict.push("score " + j.score);
    if (j.rating) verdict.push("rating " + j.rating);
    if (j.winner) verdict.push("winner " + j.winner);
    if (j.error) verdict.push("no verdict: " + j.error);
    if (j.rationale) verdict.push("— " + j.rationale);
    setText("judge", verdict.join(" "));
  }

  function act(body, advance) {
    if (!state || current >= state.total) return Promise.resolve();
    var rec = state.records[current];
    body.index = current;
    var at = current;
    return api("api/action", body).then(function (res) {
      if (res.label) state.labels[rec.id] = res.label; else delete state.labels[rec.id];
      state.reviewed = res.reviewed;
      if (advance && current === at) current = Math.min(current + 1, state.total);
      setText("error", "");
      render();
    }).catch(function (e) { setText("error", e.message); });
  }

  function startEdit() {
    if (current >= state.total) return;
    editing = true;
    $("edit").value = $("output").textContent;
    $("edit-box").hidden = false;
    $("edit").focus();
  }

  function stopEdit(save) {
    var text = $("edit").value;
    editing = false;
    $("edit-box").hidden = true;
    if (save) act({action: "edit", output: text}, false);
  }

  function move(delta) {
    current = Math.max(0, Math.min(state.total, current + delta));
    render();
  }

  function onKey(e) {
    if (!state) return;
    if (editing) {
      if (e.key === "Escape") { e.preventDefault(); stopEdit(false); }
      else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); stopEdit(true); }
      return;
    }
    if (e.target && e.target.id === "score") return;  // typing a score in the box
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var k = e.key;
    var pair = current < state.total && state.records[current].output_b != null;
    if (k === "k") act({action: "keep"}, true);
    else if (k === "x" || k === "r") act({action: "reject"}, true);
    else if (/^[0-9]$/.test(k)) act({action: "score", score: k === "0" ? 10 : Number(k)}, false);
    else if (k === "e") { e.preventDefault(); startEdit(); }
    else if (k === "u") act({action: "undo"}, false);
    else if (pair && (k === "a" || k === "b")) act({action: "choose", choice: k.toUpperCase()}, true);
    else if (pair && k === "t") act({action: "choose", choice: "tie"}, true);
    else if (k === "ArrowRight" || k === "n") move(1);
    else if (k === "ArrowLeft" || k === "p") move(-1);
    else if (k === "g") { current = firstUnreviewed(); render(); }
    else return;
    e.preventDefault();
  }

  function firstUnreviewed() {
    for (var i = 0; i < state.records.length; i++) if (!state.labels[state.records[i].id]) return i;
    return state.total;
  }

  function wire() {
    document.addEventListener("keydown", onKey);
    $("keep").addEventListener("click", function () { act({action: "keep"}, true); });
    $("reject").addEventListener("click", function () { act({action: "reject"}, true); });
    $("undo").addEventListener("click", function () { act({action: "undo"}, false); });
    $("edit-btn").addEventListener("click", startEdit);
    $("save").addEventListener("click", function () { stopEdit(true); });
    $("cancel").addEventListener("click", function () { stopEdit(false); });
    $("choose-a").addEventListener("click", function () { act({action: "choose", choice: "A"}, true); });
    $("choose-b").addEventListener("click", function () { act({action: "choose", choice: "B"}, true); });
    $("choose-tie").addEventListener("click", function () { act({action: "choose", choice: "tie"}, true); });
    $("score").addEventListener("change", function () {
      var v = parseInt($("score").value, 10);
      if (v >= 1 && v <= 10) act({action: "score", score: v}, false);
    });
    $("prev").addEventListener("click", function () { move(-1); });
    $("next").addEventListener("click", function () { move(1); });
    $("jump").addEventListener("click", function () { current = firstUnreviewed(); render(); });
  }

  wire();
  api("api/state").then(function (data) {
    state = data;
    setText("file", data.file + " → " + data.feedback);
    current = data.first_unreviewed;
    render();
    document.body.dataset.ready = "1";
  }).catch(function (e) { setText("error", e.message); });
})();
