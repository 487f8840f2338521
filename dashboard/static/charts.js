// Charts drawn with the vendored uPlot (static/vendor/uplot, MIT) from JSON the page carries in
// a data-chart attribute (data, not code: the CSP allows only our own scripts).
"use strict";

(function () {
  function stack(series) {
    var sums = series[0].values.map(function () { return 0; });
    return series.map(function (s) {
      return s.values.map(function (v, i) { sums[i] += v || 0; return sums[i]; });
    });
  }

  function draw(el) {
    var spec;
    try {
      spec = JSON.parse(el.dataset.chart);
    } catch (e) {
      return;
    }
    if (!window.uPlot || !spec.x || !spec.x.length) {
      return;
    }
    var xs = spec.x.map(function (_, i) { return i; });
    var values = spec.stacked ? stack(spec.series) : spec.series.map(function (s) { return s.values; });
    var order = spec.stacked ? values.map(function (_, i) { return i; }).reverse() : values.map(function (_, i) { return i; });
    var data = [xs];
    var series = [{ label: spec.x_label || "" }];
    var bars = spec.kind === "bars" ? uPlot.paths.bars({ size: [0.7, 48] }) : null;
    order.forEach(function (i) {
      var s = spec.series[i];
      data.push(values[i]);
      series.push({
        label: s.label, stroke: s.color, fill: spec.kind === "bars" ? s.color : null,
        width: spec.kind === "bars" ? 0 : 2, scale: s.scale || "y",
        paths: bars || undefined, points: { show: spec.kind !== "bars" }
      });
    });
    var axes = [{
      values: function (u, splits) {
        return splits.map(function (v) { return spec.x[v] !== undefined ? spec.x[v] : ""; });
      }
    }, { scale: "y" }];
    var scales = { x: { time: false, range: [-0.5, xs.length - 0.5] }, y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } };
    if (spec.series.some(function (s) { return s.scale === "y2"; })) {
      axes.push({ scale: "y2", side: 1, grid: { show: false } });
      scales.y2 = { range: function (u, min, max) { return [0, Math.max(1, max)]; } };
    }
    el.textContent = "";
    var chart = new uPlot({
      width: Math.max(200, el.clientWidth), height: 220, series: series, axes: axes,
      scales: scales, legend: { show: true }, cursor: { drag: { x: false, y: false } }
    }, data, el);
    window.addEventListener("resize", function () {
      chart.setSize({ width: Math.max(200, el.clientWidth), height: 220 });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart]").forEach(draw);
  });
})();
