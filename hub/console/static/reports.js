// The reports page's charts: Chart.js draws the series of the JSON block #report-chart-data
// (the figures of the tables above them) on each canvas[data-chart]. No inline script, no eval.
"use strict";

(function () {
  // Dark, distinct colours: each bar keeps at least 3:1 against the white page (WCAG 1.4.11).
  const COLOURS = ["#1f4e96", "#a34a00", "#6b2c91", "#5c5c5c"];
  const LABEL_MAX = 28;

  function shortLabel(text) {
    // Only the axis tick is shortened; the label itself (and so its tooltip) stays the literal text.
    const label = String(text);
    return label.length > LABEL_MAX ? label.slice(0, LABEL_MAX - 1) + "\u2026" : label;
  }

  function drawChart(canvas, series) {
    const stacked = Boolean(series.stacked);
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: series.labels,
        datasets: series.datasets.map(function (dataset, index) {
          return {
            label: dataset.label,
            data: dataset.data,
            backgroundColor: COLOURS[index % COLOURS.length],
            borderColor: "#000000",
            borderWidth: 1,
          };
        }),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        responsive: true,
        scales: {
          x: {
            stacked: stacked,
            ticks: {
              callback: function (value) {
                return shortLabel(this.getLabelForValue(value));
              },
            },
          },
          y: {
            stacked: stacked,
            beginAtZero: true,
            // Agents come whole; seconds keep their decimals.
            ticks: { precision: series.unit === "agents" ? 0 : undefined },
            title: { display: true, text: series.unit },
          },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  function drawAll() {
    const source = document.getElementById("report-chart-data");
    if (!source || !window.Chart) {
      return;
    }
    const charts = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const series = charts[canvas.dataset.chart];
      if (series) {
        drawChart(canvas, series);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
