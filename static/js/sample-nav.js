// The sample page's keys, as in the review queue: → or j opens the next sample of the filtered set, ← or k the
// previous one. Each key follows the link the page already shows (rel=next / rel=prev), so mouse and keyboard
// users go to the same place; keys typed into a form field stay there.
(function () {
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target && (target.isContentEditable || (target.matches && target.matches("input, select, textarea")))) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.shiftKey) return;
    var rel = null;
    if (event.key === "ArrowRight" || event.key === "j") rel = "next";
    else if (event.key === "ArrowLeft" || event.key === "k") rel = "prev";
    if (!rel) return;
    var link = document.querySelector('#sample-nav a[rel="' + rel + '"]');
    if (!link) return;
    event.preventDefault();
    link.click();
  });
})();
