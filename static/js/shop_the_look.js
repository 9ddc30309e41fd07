// Shop the look: preview the photo, drop or paste it, and box one piece of it.
// Progressive enhancement: without this file the form still posts the chosen photo and
// the whole picture is searched.
(function () {
  "use strict";

  const form = document.querySelector("[data-stl-form]");
  if (!form) return;

  const picker = form.querySelector('input[type="file"][name="image"]');
  const camera = form.querySelector('input[type="file"][name="camera"]');
  const dropzone = form.querySelector("[data-dropzone]");
  const stage = form.querySelector("[data-stage]");
  const photo = form.querySelector("[data-photo]");
  const boxEl = form.querySelector("[data-box]");
  const toolbar = form.querySelector("[data-toolbar]");
  const hint = form.querySelector("[data-box-hint]");
  const clearButton = form.querySelector("[data-clear-box]");
  const clientError = form.querySelector("[data-client-error]");
  const submit = form.querySelector("[data-submit]");
  const submitLabel = form.querySelector("[data-submit-label]");
  const fields = {};
  form.querySelectorAll("[data-box-field]").forEach((input) => { fields[input.dataset.boxField] = input; });

  const maxBytes = Number(picker.dataset.maxBytes) || 20 * 1024 * 1024;
  const MIN_DISPLAY_PX = 12;   // a shorter drag is a click, not a box
  const MIN_NATURAL_PX = 16;   // the server's smallest box side (visualsearch.selectors.MIN_BOX_SIDE)

  let box = null;              // {x, y, w, h} as fractions of the photo, or null for the whole photo
  let drag = null;             // the gesture in progress
  let objectUrl = null;
  let currentFile = null;      // the photo in the form, to put back if a new pick is refused

  form.classList.add("is-enhanced");

  // The photo ---------------------------------------------------------------------------

  function showError(message) {
    clientError.textContent = message || "";
    clientError.hidden = !message;
    dropzone.classList.toggle("has-error", Boolean(message));
  }

  function acceptable(file) {
    if (!file) return false;
    if (file.type && !file.type.startsWith("image/")) {
      showError("That file is not a photo. Choose a JPEG, PNG or WebP image.");
      return false;
    }
    if (file.size > maxBytes) {
      showError("That photo is larger than " + Math.round(maxBytes / 1048576) + " MB.");
      return false;
    }
    if (file.size === 0) {
      showError("That file is empty.");
      return false;
    }
    showError("");
    return true;
  }

  // Puts ``file`` into the "image" input, so exactly one photo is posted whichever way it came.
  function setPickerFile(file) {
    try {
      const transfer = new DataTransfer();
      transfer.items.add(file);
      picker.files = transfer.files;
      return true;
    } catch (error) {
      return false; // very old browsers: the file stays where it was chosen
    }
  }

  function preview(src) {
    if (objectUrl && objectUrl !== src) URL.revokeObjectURL(objectUrl);
    photo.removeAttribute("data-server-preview");
    photo.src = src;
    stage.hidden = false;
    toolbar.hidden = false;
    dropzone.classList.add("has-photo");
    setBox(null);
  }

  function useFile(file, source) {
    if (!acceptable(file)) {
      if (source) source.value = "";
      if (currentFile && source !== camera) setPickerFile(currentFile);
      return;
    }
    if (source === camera) {
      // Send the camera shot as "image" and empty the camera input, so it is not posted twice.
      if (setPickerFile(file)) camera.value = "";
      else picker.value = "";
    } else if (source === picker) {
      camera.value = "";
    } else if (setPickerFile(file)) {
      camera.value = ""; // dropped or pasted
    } else {
      showError("This browser cannot take dropped photos; use “Choose a photo”.");
      return;
    }
    currentFile = file;
    objectUrl = URL.createObjectURL(file);
    preview(objectUrl);
  }

  picker.addEventListener("change", () => { if (picker.files.length) useFile(picker.files[0], picker); });
  camera.addEventListener("change", () => { if (camera.files.length) useFile(camera.files[0], camera); });

  // Drag and drop onto the drop zone (the whole zone, photo included).
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

  // Paste a screenshot straight into the page.
  document.addEventListener("paste", (event) => {
    const file = event.clipboardData && Array.from(event.clipboardData.files).find((f) => f.type.startsWith("image/"));
    if (file) {
      event.preventDefault();
      useFile(file, null);
    }
  });

  // The box -----------------------------------------------------------------------------

  const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

  function pointFrom(event) {
    const rect = photo.getBoundingClientRect();
    return {
      x: clamp((event.clientX - rect.left) / rect.width, 0, 1),
      y: clamp((event.clientY - rect.top) / rect.height, 0, 1),
    };
  }

  function between(a, b) {
    return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
  }

  function bigEnough(candidate) {
    const rect = photo.getBoundingClientRect();
    return candidate.w * rect.width >= MIN_DISPLAY_PX && candidate.h * rect.height >= MIN_DISPLAY_PX
      && candidate.w * photo.naturalWidth >= MIN_NATURAL_PX && candidate.h * photo.naturalHeight >= MIN_NATURAL_PX;
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

  // Hidden fields get pixels of the photo as it will be posted (its natural size, upright:
  // browsers apply EXIF orientation to <img>, and the server does the same before cropping).
  function writeFields() {
    const width = photo.naturalWidth, height = photo.naturalHeight;
    if (box && width && height) {
      const x = Math.round(box.x * width), y = Math.round(box.y * height);
      fields.x.value = x;
      fields.y.value = y;
      fields.w.value = Math.max(1, Math.min(width - x, Math.round(box.w * width)));
      fields.h.value = Math.max(1, Math.min(height - y, Math.round(box.h * height)));
    } else {
      Object.values(fields).forEach((input) => { input.value = ""; });
    }
  }

  function setBox(next) {
    box = next;
    render(box);
    writeFields();
    clearButton.hidden = !box;
    hint.textContent = box ? "Searching the boxed area. Drag it to move, or its corners to resize."
      : "Drag over the photo to box one piece.";
  }

  const OPPOSITE = { nw: ["right", "bottom"], ne: ["left", "bottom"], sw: ["right", "top"], se: ["left", "top"] };

  stage.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    const point = pointFrom(event);
    const handle = event.target.closest("[data-handle]");
    if (handle && box) {
      // Resizing is drawing again from the fixed, opposite corner.
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
      drag.current = {
        x: clamp(s.x + point.x - drag.origin.x, 0, 1 - s.w),
        y: clamp(s.y + point.y - drag.origin.y, 0, 1 - s.h),
        w: s.w,
        h: s.h,
      };
    } else {
      drag.current = between(drag.origin, point);
    }
    render(drag.current);
  });

  function endDrag() {
    if (!drag) return;
    const { current, previous, mode } = drag;
    drag = null;
    if (current && (mode === "move" || bigEnough(current))) setBox(current);
    else render(previous); // a click or a tiny drag: keep the box there was
  }
  stage.addEventListener("pointerup", endDrag);
  stage.addEventListener("pointercancel", () => { if (drag) { render(drag.previous); drag = null; } });

  clearButton.addEventListener("click", () => setBox(null));

  // Keyboard: with the stage focused, Escape clears the box.
  stage.tabIndex = 0;
  stage.setAttribute("aria-label", "Your photo. Drag to draw a box around one piece.");
  stage.addEventListener("keydown", (event) => { if (event.key === "Escape") setBox(null); });

  // Coming back with results: the page shows the posted photo (downscaled, never stored).
  // Put it back in the form, with its box, so the shopper can adjust and search again.
  function restoreServerPreview() {
    if (!photo.hasAttribute("data-server-preview")) return;
    const [head, data] = photo.src.split(",");
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const type = head.slice(5).split(";")[0] || "image/jpeg";
    const file = new File([bytes], "photo.jpg", { type: type });
    if (!setPickerFile(file)) return;
    currentFile = file;
    const d = photo.dataset;
    const restored = d.boxLeft ? {
      x: Number(d.boxLeft) / 100, y: Number(d.boxTop) / 100, w: Number(d.boxWidth) / 100, h: Number(d.boxHeight) / 100,
    } : null;
    setBox(restored);
  }
  if (photo.complete && photo.naturalWidth) restoreServerPreview();
  else photo.addEventListener("load", restoreServerPreview, { once: true });

  // Submit ------------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    if (!picker.files.length && !camera.files.length) {
      event.preventDefault();
      showError("Choose a photo first.");
      picker.focus();
      return;
    }
    writeFields();
    submit.setAttribute("aria-busy", "true");
    submitLabel.textContent = "Finding similar pieces…";
  });
  // Back/forward cache: do not come back to a busy-looking button.
  window.addEventListener("pageshow", () => {
    submit.removeAttribute("aria-busy");
    submitLabel.textContent = "Find similar pieces";
  });
})();
