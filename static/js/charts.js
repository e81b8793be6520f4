// Draws every Plotly figure the server put in the page as <script type="application/json" data-chart>.
// Figures are built in Python (selectors.py); this only draws them, and again after each HTMX swap.
// Plotly (4.8 MB) is included only by pages with charts ({% block scripts %}); when a chart arrives anyway (the home
// dashboard's section, an HTMX swap), it is loaded here once, on demand.
(function () {
  var plotlySrc = document.currentScript && document.currentScript.dataset.plotlySrc;
  function withPlotly(root, draw) {
    if (typeof Plotly !== "undefined") return draw();
    if (!root.querySelector("script[data-chart]")) return;
    var tag = document.querySelector("script[data-plotly]");
    if (!tag) {
      if (!plotlySrc) return;
      tag = document.createElement("script");
      tag.src = plotlySrc;
      tag.setAttribute("data-plotly", "");
      document.head.appendChild(tag);
    }
    tag.addEventListener("load", draw);
  }
  function drawCharts(root) {
    withPlotly(root, function () { drawNow(root); });
  }
  function drawNow(root) {
    root.querySelectorAll("script[data-chart]").forEach(function (node) {
      var target = document.getElementById(node.dataset.chart);
      if (!target) return;
      var figure = JSON.parse(node.textContent);
      Plotly.react(target, figure.data, figure.layout, { displaylogo: false, responsive: true })
        .then(function () { untabToolbar(target); });
      if (!target.dataset.untabBound) {  // Plotly rebuilds the toolbar on relayout: take it out again each time
        target.dataset.untabBound = "1";
        target.on("plotly_afterplot", function () { untabToolbar(target); });
      }
      bindHeatmapFilter(target, figure);
    });
  }
  // Plotly's toolbar buttons (zoom, pan, download...) are <button>s: without this, a keyboard user tabs through a
  // dozen of them per chart. They stay clickable with a mouse; the charts' numbers are in the tables beside them.
  function untabToolbar(target) {
    target.querySelectorAll(".modebar-btn, .modebar a").forEach(function (button) {
      button.setAttribute("tabindex", "-1");
    });
  }
  // A confusion heatmap inside [data-heatmap-filter] (the property's filtered table URL): a click on a cell opens
  // the sample table filtered to that assigned (y) and judged (x) value. A real navigation, so back returns here.
  function bindHeatmapFilter(target, figure) {
    var holder = target.closest("[data-heatmap-filter]");
    if (!holder || target.dataset.filterBound || !figure.data.length || figure.data[0].type !== "heatmap") return;
    target.dataset.filterBound = "1";
    target.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      if (!point) return;
      var url = holder.dataset.heatmapFilter +
        "&assigned=" + encodeURIComponent(point.y) + "&judged=" + encodeURIComponent(point.x);
      window.location.assign(url + "#classifications-table");
    });
    target.style.cursor = "pointer";
  }
  window.addEventListener("load", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
})();

