// Draws every Plotly figure the server put in the page as <script type="application/json" data-chart>.
// Figures are built in Python (selectors.py); this only draws them, and again after each HTMX swap.
(function () {
  function drawCharts(root) {
    if (typeof Plotly === "undefined") return;
    root.querySelectorAll("script[data-chart]").forEach(function (node) {
      var target = document.getElementById(node.dataset.chart);
      if (!target) return;
      var figure = JSON.parse(node.textContent);
      Plotly.react(target, figure.data, figure.layout, { displaylogo: false, responsive: true });
    });
  }
  window.addEventListener("load", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
})();

