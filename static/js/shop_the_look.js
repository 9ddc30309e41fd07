// Shop the look. Progressive enhancement: without this file the upload form posts the photo,
// the search lives at its own URL, and every choice there (a garment, a box typed in pixels,
// a filter, a category) is a link or a GET form.
//
// With it: the photo is checked and shrunk in the browser before it is sent (a phone's
// 8000 x 8000 photo becomes 2,000 px on its long side), a rate-limited upload keeps the photo
// and says when to retry, and on a search's page a box can be drawn, moved and resized with
// the pointer or the keyboard, with the results swapped in place as it moves.
(function () {
  "use strict";

  const clamp = (value, low, high) => Math.min(high, Math.max(low, value));
  const MIN_DISPLAY_PX = 12;   // a shorter drag is a click, not a box
  const MIN_NATURAL_PX = 16;   // the server's smallest box side (visualsearch.photos.MIN_BOX_SIDE)
  const UPLOAD_LONG_SIDE = 2000;
  const UPLOAD_QUALITY = 0.9;
  const REFINE_DELAY_MS = 350;

  // A box over a photo: drawn, moved and resized with the pointer; moved (arrows), resized
  // (Shift + arrows) and committed (Enter) with the keyboard. Fractions of the photo.
  function BoxController(stage, photo, boxEl, onChange) {
    let box = null;
    let drag = null;
    const OPPOSITE = { nw: ["right", "bottom"], ne: ["left", "bottom"], sw: ["right", "top"], se: ["left", "top"] };

    function pointFrom(event) {
      const rect = photo.getBoundingClientRect();
      return { x: clamp((event.clientX - rect.left) / rect.width, 0, 1), y: clamp((event.clientY - rect.top) / rect.height, 0, 1) };
    }
    function between(a, b) {
      return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
    }
    function naturalSize() {
      return { w: Number(stage.dataset.width) || photo.naturalWidth, h: Number(stage.dataset.height) || photo.naturalHeight };
    }
    function bigEnough(candidate) {
      const rect = photo.getBoundingClientRect();
      const size = naturalSize();
      return candidate.w * rect.width >= MIN_DISPLAY_PX && candidate.h * rect.height >= MIN_DISPLAY_PX
        && candidate.w * size.w >= MIN_NATURAL_PX && candidate.h * size.h >= MIN_NATURAL_PX;
    }
    function render(current) {
      boxEl.hidden = !current;
      if (current) {
        boxEl.style.left = current.x * 100 + "%";
        boxEl.style.top = current.y * 100 + "%";
        boxEl.style.width = current.w * 100 + "%";
        boxEl.style.height = current.h * 100 + "%";
      }
    }
    function set(next, how) {
      box = next;
      render(box);
      onChange(box, how || "final");
    }

    stage.addEventListener("pointerdown", (event) => {
      if (event.pointerType === "mouse" && event.button !== 0) return;
      if (event.target.closest("a")) return; // a hotspot: a link, handled elsewhere
      event.preventDefault();
      const point = pointFrom(event);
      const handle = event.target.closest("[data-handle]");
      if (handle && box) {
        const [hx, vy] = OPPOSITE[handle.dataset.handle];
        drag = { mode: "draw", origin: { x: hx === "left" ? box.x : box.x + box.w, y: vy === "top" ? box.y : box.y + box.h }, previous: box };
      } else if (box && event.target.closest("[data-box]")) {
        drag = { mode: "move", origin: point, start: Object.assign({}, box), previous: box };
      } else {
        drag = { mode: "draw", origin: point, previous: box };
      }
      stage.setPointerCapture(event.pointerId);
    });
    stage.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const point = pointFrom(event);
      if (drag.mode === "move") {
        const s = drag.start;
        drag.current = { x: clamp(s.x + point.x - drag.origin.x, 0, 1 - s.w), y: clamp(s.y + point.y - drag.origin.y, 0, 1 - s.h), w: s.w, h: s.h };
      } else {
        drag.current = between(drag.origin, point);
      }
      render(drag.current);
      if (drag.current && (drag.mode === "move" || bigEnough(drag.current))) onChange(drag.current, "moving");
    });
    function endDrag() {
      if (!drag) return;
      const { current, previous, mode } = drag;
      drag = null;
      if (current && (mode === "move" || bigEnough(current))) set(current);
      else render(previous);
    }
    stage.addEventListener("pointerup", endDrag);
    stage.addEventListener("pointercancel", () => { if (drag) { render(drag.previous); drag = null; } });

    boxEl.addEventListener("keydown", (event) => {
      if (!box) return;
      const step = event.altKey ? 0.1 : 0.02;
      const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (event.key in moves) {
        event.preventDefault();
        const [dx, dy] = moves[event.key];
        const next = Object.assign({}, box);
        if (event.shiftKey) {
          next.w = clamp(box.w + dx * step, 0.02, 1 - box.x);
          next.h = clamp(box.h + dy * step, 0.02, 1 - box.y);
        } else {
          next.x = clamp(box.x + dx * step, 0, 1 - box.w);
          next.y = clamp(box.y + dy * step, 0, 1 - box.h);
        }
        if (bigEnough(next)) set(next, "key");
      } else if (event.key === "Enter") {
        event.preventDefault();
        onChange(box, "final");
      } else if (event.key === "Escape") {
        set(null);
      }
    });

    return {
      get: () => box,
      set: set,
      show: (next) => { box = next; render(box); },
      naturalSize: naturalSize,
    };
  }

  // The upload page ---------------------------------------------------------------------

  function uploadPage(form) {
    const picker = form.querySelector('input[type="file"][name="image"]');
    const camera = form.querySelector('input[type="file"][name="camera"]');
    const dropzone = form.querySelector("[data-dropzone]");
    const stage = form.querySelector("[data-stage]");
    const photo = form.querySelector("[data-photo]");
    const boxEl = form.querySelector("[data-box]");
    const toolbar = form.querySelector("[data-toolbar]");
    const hint = form.querySelector("[data-box-hint]");
    const clearButton = form.querySelector("[data-clear-box]");
    const drawButton = form.querySelector("[data-draw-box]");
    const clientError = form.querySelector("[data-client-error]");
    const status = form.querySelector("[data-upload-status]");
    const submit = form.querySelector("[data-submit]");
    const submitLabel = form.querySelector("[data-submit-label]");
    const fields = {};
    form.querySelectorAll("[data-box-field]").forEach((input) => { fields[input.dataset.boxField] = input; });
    const maxBytes = Number(picker.dataset.maxBytes) || 20 * 1024 * 1024;
    let objectUrl = null;
    let sentSize = null;   // {w, h} of the photo as it will be uploaded (after shrinking)
    let busy = false;

    form.classList.add("is-enhanced");

    function showError(message) {
      clientError.textContent = message || "";
      clientError.hidden = !message;
      dropzone.classList.toggle("has-error", Boolean(message));
    }

    function setPickerFile(file) {
      try {
        const transfer = new DataTransfer();
        transfer.items.add(file);
        picker.files = transfer.files;
        camera.value = "";
        return true;
      } catch (error) {
        return false;
      }
    }

    const controller = BoxController(stage, photo, boxEl, (box) => {
      writeFields(box);
      clearButton.hidden = !box;
      hint.textContent = box ? "Searching the boxed area. Drag it, or use the arrow keys (Shift to resize)."
        : "Drag over the photo to box one piece, or search the whole photo.";
    });

    function writeFields(box) {
      if (box && sentSize) {
        const x = Math.round(box.x * sentSize.w), y = Math.round(box.y * sentSize.h);
        fields.x.value = x;
        fields.y.value = y;
        fields.w.value = Math.max(1, Math.min(sentSize.w - x, Math.round(box.w * sentSize.w)));
        fields.h.value = Math.max(1, Math.min(sentSize.h - y, Math.round(box.h * sentSize.h)));
      } else {
        Object.values(fields).forEach((input) => { input.value = ""; });
      }
    }

    // Decode in the browser (a file that does not decode is refused before it is sent), and
    // shrink a large photo to UPLOAD_LONG_SIDE, upright, as a JPEG.
    async function prepare(file) {
      let bitmap;
      try {
        bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
      } catch (error) {
        throw new Error("That file is not a photo we can read. Choose a JPEG, PNG or WebP image.");
      }
      const long = Math.max(bitmap.width, bitmap.height);
      if (long <= UPLOAD_LONG_SIDE && file.size <= maxBytes) {
        return { file: file, size: { w: bitmap.width, h: bitmap.height } };
      }
      const scale = Math.min(1, UPLOAD_LONG_SIDE / long);
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", UPLOAD_QUALITY));
      if (!blob) throw new Error("This photo could not be prepared for upload; try another one.");
      return { file: new File([blob], "photo.jpg", { type: "image/jpeg" }), size: { w: canvas.width, h: canvas.height } };
    }

    async function useFile(file, source) {
      if (!file) return;
      if (file.type && !file.type.startsWith("image/")) {
        showError("That file is not a photo. Choose a JPEG, PNG or WebP image.");
        if (source) source.value = "";
        return;
      }
      if (file.size === 0) { showError("That file is empty."); return; }
      status.textContent = "Preparing your photo…";
      try {
        const prepared = await prepare(file);
        if (!setPickerFile(prepared.file)) {
          if (prepared.file !== file) throw new Error("This browser cannot shrink the photo; choose a smaller one.");
        }
        sentSize = prepared.size;
        showError("");
        if (objectUrl) URL.revokeObjectURL(objectUrl);
        objectUrl = URL.createObjectURL(prepared.file);
        photo.src = objectUrl;
        stage.dataset.width = sentSize.w;
        stage.dataset.height = sentSize.h;
        stage.hidden = false;
        toolbar.hidden = false;
        dropzone.classList.add("has-photo");
        controller.set(null);
        status.textContent = prepared.file === file ? "" : "Shrunk to " + sentSize.w + "×" + sentSize.h + " pixels for the upload.";
      } catch (error) {
        status.textContent = "";
        showError(error.message);
        if (source) source.value = "";
      }
    }

    picker.addEventListener("change", () => { if (picker.files.length) useFile(picker.files[0], picker); });
    camera.addEventListener("change", () => { if (camera.files.length) useFile(camera.files[0], camera); });
    ["dragenter", "dragover"].forEach((type) => dropzone.addEventListener(type, (event) => {
      if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      dropzone.classList.add("is-dragover");
    }));
    ["dragleave", "dragend"].forEach((type) => dropzone.addEventListener(type, (event) => {
      if (!dropzone.contains(event.relatedTarget)) dropzone.classList.remove("is-dragover");
    }));
    dropzone.addEventListener("drop", (event) => {
      event.preventDefault();
      dropzone.classList.remove("is-dragover");
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) useFile(file, null);
    });
    document.addEventListener("paste", (event) => {
      const file = event.clipboardData && Array.from(event.clipboardData.files).find((f) => f.type.startsWith("image/"));
      if (file) { event.preventDefault(); useFile(file, null); }
    });
    clearButton.addEventListener("click", () => controller.set(null));
    drawButton.addEventListener("click", () => {
      controller.set({ x: 0.25, y: 0.25, w: 0.5, h: 0.5 });
      boxEl.focus();
    });

    function setBusy(on, label) {
      busy = on;
      submit.disabled = on;
      submit.setAttribute("aria-busy", on ? "true" : "false");
      submitLabel.textContent = label || "Find similar pieces";
    }

    // Sent with fetch so that a refusal (too many searches) keeps the photo in the form.
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (busy) return;
      if (!picker.files.length && !camera.files.length) {
        showError("Choose a photo first.");
        picker.focus();
        return;
      }
      writeFields(controller.get());
      setBusy(true, "Finding the pieces…");
      let response;
      try {
        response = await fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" });
      } catch (error) {
        setBusy(false);
        showError("The upload did not go through (no connection?). Your photo is still here: try again.");
        return;
      }
      if (response.redirected) {
        window.location.assign(response.url);
        return;
      }
      if (response.status === 429) {
        const wait = Number(response.headers.get("Retry-After")) || 60;
        let left = wait;
        showError("");
        status.textContent = "Too many searches in a short time. Your photo is kept: you can search again in " + left + " s.";
        const timer = setInterval(() => {
          left -= 1;
          if (left <= 0) {
            clearInterval(timer);
            status.textContent = "You can search again now.";
            setBusy(false);
          } else {
            status.textContent = "Too many searches in a short time. Your photo is kept: you can search again in " + left + " s.";
          }
        }, 1000);
        submitLabel.textContent = "Please wait…";
        return;
      }
      // Anything else (a form error the server explains): show the server's page.
      const html = await response.text();
      document.open();
      document.write(html);
      document.close();
    });
    window.addEventListener("pageshow", () => setBusy(false));
  }

  // A kept search's page -----------------------------------------------------------------

  function lookPage(stage) {
    const photo = stage.querySelector(".stl-stage__photo");
    const boxEl = stage.querySelector("[data-box]");
    const results = document.querySelector("[data-results]");
    const form = document.querySelector("[data-refine]");
    const hint = document.querySelector("[data-box-hint]");
    const boxInputs = {};
    form.querySelectorAll("[data-box-input]").forEach((input) => { boxInputs[input.dataset.boxInput] = input; });
    let itemField = form.querySelector("[data-item-field]");
    let timer = null;
    let inflight = null;

    function query() {
      const params = new URLSearchParams(new FormData(form));
      for (const [key, value] of Array.from(params.entries())) { if (value === "") params.delete(key); }
      return params;
    }

    async function refresh(params) {
      if (inflight) inflight.abort();
      inflight = new AbortController();
      results.setAttribute("aria-busy", "true");
      try {
        const response = await fetch(stage.dataset.resultsUrl + "?" + params.toString(), { signal: inflight.signal, credentials: "same-origin" });
        const text = await response.text();
        if (response.status === 429) {
          hint.textContent = text;
        } else {
          results.innerHTML = text;
          history.replaceState(null, "", "?" + params.toString() + "#results");
        }
      } catch (error) {
        if (error.name !== "AbortError") hint.textContent = "Could not update the results; use “Update results”.";
      } finally {
        results.setAttribute("aria-busy", "false");
      }
    }

    function refreshSoon(params) {
      clearTimeout(timer);
      timer = setTimeout(() => refresh(params || query()), REFINE_DELAY_MS);
    }

    function selectChip(index) {
      document.querySelectorAll(".stl-chip, .stl-hotspot").forEach((el) => {
        const on = el.dataset.item === String(index);
        el.classList.toggle("is-selected", on);
        if (el.classList.contains("stl-chip")) { if (on) el.setAttribute("aria-current", "true"); else el.removeAttribute("aria-current"); }
      });
    }

    const controller = BoxController(stage, photo, boxEl, (box, how) => {
      const size = controller ? controller.naturalSize() : { w: Number(stage.dataset.width), h: Number(stage.dataset.height) };
      if (!box) return;
      const px = { x: Math.round(box.x * size.w), y: Math.round(box.y * size.h), w: Math.round(box.w * size.w), h: Math.round(box.h * size.h) };
      Object.keys(px).forEach((key) => { boxInputs[key].value = px[key]; });
      if (itemField) { itemField.remove(); itemField = null; }
      selectChip(-1);
      hint.textContent = "Searching the box: " + px.w + "×" + px.h + " pixels.";
      if (how === "final") refresh(query());
      else refreshSoon();
    });
    // The box the page was rendered with: a typed or drawn box, else the chosen garment's.
    (function initialBox() {
      if (boxEl.hidden) return;
      const size = controller.naturalSize();
      const typed = ["x", "y", "w", "h"].map((k) => Number(boxInputs[k].value));
      const chip = document.querySelector("a.stl-chip.is-selected");
      const v = typed[2] && typed[3] ? typed : (chip ? chip.dataset.region.split(",").map(Number) : null);
      if (v) controller.show({ x: v[0] / size.w, y: v[1] / size.h, w: v[2] / size.w, h: v[3] / size.h });
    })();

    // Choosing a garment: its box on the photo, its results in place.
    document.addEventListener("click", (event) => {
      const chip = event.target.closest("a.stl-chip, a.stl-hotspot");
      if (chip) {
        event.preventDefault();
        const size = controller.naturalSize();
        const [x, y, w, h] = chip.dataset.region.split(",").map(Number);
        const whole = x === 0 && y === 0 && w === size.w && h === size.h;
        controller.show(whole ? null : { x: x / size.w, y: y / size.h, w: w / size.w, h: h / size.h });
        Object.values(boxInputs).forEach((input) => { input.value = ""; });
        if (!itemField) {
          itemField = document.createElement("input");
          itemField.type = "hidden";
          itemField.name = "item";
          itemField.dataset.itemField = "";
          form.prepend(itemField);
        }
        itemField.value = chip.dataset.item;
        selectChip(chip.dataset.item);
        refresh(query());
        return;
      }
      const link = event.target.closest("[data-refine-link]");
      if (link) {
        event.preventDefault();
        const params = new URLSearchParams(link.getAttribute("href").split("#")[0].replace(/^\?/, ""));
        const category = form.querySelector('[name="category"]');
        if (category) category.value = params.get("category") || "";
        refresh(params);
      }
    });

    form.addEventListener("submit", (event) => { event.preventDefault(); refresh(query()); });
    form.addEventListener("change", (event) => {
      if (event.target.matches("[data-box-input]")) return; // typed boxes search on submit
      refreshSoon();
    });
  }

  const uploadForm = document.querySelector("[data-stl-form]");
  if (uploadForm) uploadPage(uploadForm);
  const lookStage = document.querySelector("[data-look-stage]");
  if (lookStage) lookPage(lookStage);
})();
