// The review queue's keys: 1..9 press the n-th value's button, → or j skip, ← or k back, u or Ctrl-Z undo.
// Each key clicks the button or link the page already has (data-key), so HTMX and plain form posts both work,
// and mouse users get exactly the same actions.
(function () {
  document.addEventListener("keydown", function (event) {
    var card = document.querySelector("[data-review]");
    if (!card) return;
    var target = event.target;
    if (target && (target.isContentEditable || (target.matches && target.matches("input, select, textarea")))) return;
    // One label at a time: ignore keys while the previous one is still being sent.
    if (card.querySelector(".htmx-request")) return;
    var key = null;
    if ((event.ctrlKey || event.metaKey) && (event.key === "z" || event.key === "Z")) key = "undo";
    else if (event.ctrlKey || event.metaKey || event.altKey) return;
    else if (/^[1-9]$/.test(event.key)) key = event.key;
    else if (event.key === "ArrowRight" || event.key === "j") key = "skip";
    else if (event.key === "ArrowLeft" || event.key === "k") key = "back";
    else if (event.key === "u") key = "undo";
    if (!key) return;
    var element = card.querySelector('[data-key="' + key + '"]');
    if (!element) return;
    event.preventDefault();
    element.click();
  });
})();
