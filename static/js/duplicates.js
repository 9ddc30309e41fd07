/* Duplicate review queue: keyboard shortcuts, actions without page loads, bulk selection.
   Without this script every button is a plain POST form and the page still works. */
(function () {
  "use strict";
  var queue = document.querySelector("[data-queue]");
  var live = document.querySelector("[data-live]");
  var help = document.querySelector("[data-help]");
  var helpToggle = document.querySelector("[data-help-toggle]");
  var current = null;
  // Actions that can be undone, the latest last: U undoes them one after another, and the
  // list survives the reload that follows an undo (sessionStorage, this tab only).
  var UNDO_KEY = "dup-undo";
  var FLASH_KEY = "dup-flash";
  function undoStack() {
    try { return JSON.parse(sessionStorage.getItem(UNDO_KEY) || "[]"); } catch (e) { return []; }
  }
  function saveUndoStack(stack) {
    try { sessionStorage.setItem(UNDO_KEY, JSON.stringify(stack.slice(-20))); } catch (e) { /* private mode */ }
  }

  function cards() { return Array.prototype.slice.call(document.querySelectorAll(".dup-card")); }

  function focusCard(card, scroll) {
    if (current) current.classList.remove("is-current");
    current = card || null;
    if (!current) return;
    current.classList.add("is-current");
    current.focus({ preventScroll: true });
    if (scroll !== false) current.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function move(step) {
    var list = cards();
    if (!list.length) return;
    var i = list.indexOf(current);
    focusCard(list[Math.max(0, Math.min(list.length - 1, i + step))]);
  }

  function toast(message, kind, undoUrl) {
    if (!live) return;
    var box = document.createElement("div");
    box.className = "dup-toast" + (kind === "error" ? " dup-toast--error" : "");
    var text = document.createElement("span");
    text.textContent = message;
    box.appendChild(text);
    if (undoUrl) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link-button";
      button.textContent = "Undo";
      button.addEventListener("click", function () { undo(undoUrl); });
      box.appendChild(button);
    }
    live.replaceChildren(box);
  }

  function updateCounts(counts) {
    if (!counts) return;
    Object.keys(counts).forEach(function (status) {
      var el = document.querySelector('[data-count="' + status + '"]');
      if (el) el.textContent = Number(counts[status]).toLocaleString("en-IN");
    });
  }

  function csrf(form) {
    var input = (form || document).querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, body, token) {
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": token },
    }).then(function (response) {
      return response.json().catch(function () { return { ok: false, message: "The server answered " + response.status + "." }; });
    });
  }

  function removeCard(card) {
    var list = cards();
    var next = list[list.indexOf(card) + 1] || list[list.indexOf(card) - 1] || null;
    card.classList.add("is-leaving");
    window.setTimeout(function () {
      var item = card.closest("li");
      (item || card).remove();
      focusCard(next && document.body.contains(next) ? next : cards()[0], true);
      updateSelected();
      if (!cards().length) window.location.reload(); // the empty state, or the next page
    }, 220);
  }

  function submitAction(form, card) {
    if (!form || form.dataset.busy) return;
    form.dataset.busy = "1";
    post(form.action, new FormData(form), csrf(form)).then(function (data) {
      delete form.dataset.busy;
      updateCounts(data.counts);
      toast(data.message, data.ok ? "ok" : "error", data.undo);
      if (data.undo) { var stack = undoStack(); stack.push(data.undo); saveUndoStack(stack); }
      if (data.ok || data.status) {
        if (form.dataset.action === "skip") {
          var item = card.closest("li");
          var next = cards()[cards().indexOf(card) + 1];
          card.classList.add("dup-card--skipped");
          if (item && item.parentNode) item.parentNode.appendChild(item); // skipped: to the back
          focusCard(next || cards()[0]);
        } else {
          removeCard(card);
        }
      }
    }).catch(function () {
      delete form.dataset.busy;
      form.submit(); // network trouble: fall back to the plain form post
    });
  }

  function undo(url) {
    saveUndoStack(undoStack().filter(function (u) { return u !== url; }));
    post(url, new FormData(), csrf()).then(function (data) {
      // The page reloads to show the pair again; its message is shown after the reload.
      try { sessionStorage.setItem(FLASH_KEY, JSON.stringify({ message: data.message, ok: data.ok })); } catch (e) { /* private mode */ }
      window.location.reload();
    });
  }

  (function showFlash() {
    var flash = null;
    try { flash = JSON.parse(sessionStorage.getItem(FLASH_KEY) || "null"); sessionStorage.removeItem(FLASH_KEY); } catch (e) { flash = null; }
    var stack = undoStack();
    if (flash) toast(flash.message + (stack.length ? " Press U to undo the action before." : ""), flash.ok ? "ok" : "error");
  })();

  // Forms inside cards go through fetch; the bulk form too.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var card = form.closest(".dup-card");
    if (card && form.dataset.action) {
      event.preventDefault();
      submitAction(form, card);
    }
  });

  // Bulk selection
  var selectAll = document.querySelector("[data-select-all]");
  var selectedCount = document.querySelector("[data-selected-count]");
  function boxes() { return Array.prototype.slice.call(document.querySelectorAll("[data-select]")); }
  function updateSelected() {
    var picked = boxes().filter(function (b) { return b.checked; });
    boxes().forEach(function (b) { var c = b.closest(".dup-card"); if (c) c.classList.toggle("is-selected", b.checked); });
    if (selectedCount) selectedCount.textContent = picked.length + " selected";
    // The bar follows the scroll only while something is selected (otherwise it would sit
    // over the top of the card being read).
    var bar = document.getElementById("bulk-form");
    if (bar) bar.classList.toggle("is-active", picked.length > 0);
    if (selectAll) selectAll.checked = picked.length > 0 && picked.length === boxes().length;
  }
  if (selectAll) selectAll.addEventListener("change", function () {
    boxes().forEach(function (b) { b.checked = selectAll.checked; });
    updateSelected();
  });
  document.addEventListener("change", function (event) { if (event.target.matches("[data-select]")) updateSelected(); });
  var bulkForm = document.getElementById("bulk-form");
  if (bulkForm) bulkForm.addEventListener("submit", function (event) {
    if (!boxes().some(function (b) { return b.checked; })) {
      event.preventDefault();
      toast("Select flags first (X, or the box on each card).", "error");
    }
  });

  // Clicking a card makes it the current one.
  if (queue) queue.addEventListener("click", function (event) {
    var card = event.target.closest(".dup-card");
    if (card && card !== current) focusCard(card, false);
  });

  function action(name) {
    if (!current) return;
    var form = current.querySelector('form[data-action="' + name + '"]');
    if (form) submitAction(form, current);
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" && event.target.type !== "checkbox" || tag === "select" || tag === "textarea") return;
    if (help && help.open && event.key !== "?") return;
    var key = event.key;
    var handled = true;
    if (key === "j" || key === "J" || key === "ArrowDown" && event.shiftKey) move(1);
    else if (key === "k" || key === "K" || key === "ArrowUp" && event.shiftKey) move(-1);
    else if (key === "c" || key === "C") action("confirm");
    else if (key === "1") action("keep-a");
    else if (key === "2") action("keep-b");
    else if (key === "d" || key === "D") action("dismiss");
    else if (key === "s" || key === "S") action("skip");
    else if (key === "x" || key === "X") {
      var box = current && current.querySelector("[data-select]");
      if (box) { box.checked = !box.checked; updateSelected(); }
    } else if (key === "u" || key === "U") {
      var pending = undoStack();
      if (pending.length) undo(pending[pending.length - 1]);
      else toast("Nothing to undo.", "ok");
    }
    else if (key === "?") toggleHelp();
    else handled = false;
    if (handled) event.preventDefault();
  });

  function toggleHelp() {
    if (!help || typeof help.showModal !== "function") return;
    if (help.open) help.close(); else help.showModal();
  }
  if (helpToggle) {
    helpToggle.hidden = false; // shortcuts exist only with JS
    helpToggle.addEventListener("click", toggleHelp);
  }

  focusCard(cards()[0], false);
  updateSelected();
})();
