// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Product gallery: a thumbnail swaps the large image in place instead of reloading the page.
  document.querySelectorAll("[data-gallery]").forEach(function (gallery) {
    var main = gallery.querySelector("[data-gallery-main]");
    if (!main) return;
    gallery.addEventListener("click", function (event) {
      var thumb = event.target.closest("[data-gallery-thumb]");
      if (!thumb || event.metaKey || event.ctrlKey || event.shiftKey) return;
      event.preventDefault();
      main.src = thumb.dataset.src;
      main.alt = thumb.dataset.alt || "";
      main.removeAttribute("width");
      main.removeAttribute("height");
      gallery.querySelectorAll("[data-gallery-thumb]").forEach(function (other) {
        other.removeAttribute("aria-current");
      });
      thumb.setAttribute("aria-current", "true");
      // Keep the URL shareable and the back button meaningful.
      history.replaceState(null, "", thumb.getAttribute("href"));
    });
  });

  // Filter form: leave empty fields out of the query string, so shared URLs stay short.
  document.querySelectorAll("form.filter-form").forEach(function (form) {
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.elements, function (field) {
        if (field.name && field.value === "") field.disabled = true;
      });
      // Re-enable after submit, so going back shows a usable form.
      setTimeout(function () {
        Array.prototype.forEach.call(form.elements, function (field) { field.disabled = false; });
      }, 0);
    });
  });

  // Listing filters: open by default (for no-JS), folded on phones unless showing errors.
  var filters = document.querySelector("details.filters");
  if (filters && !filters.hasAttribute("data-keep-open") && window.matchMedia("(max-width: 899px)").matches) {
    filters.open = false;
  }
})();
