// Draws the dashboard's charts with the vendored Chart.js from the figures the server rendered
// (#chart-data): the same numbers as the tables beside them. Marks each canvas it drew, so a test
// (or a person) can tell the charts were drawn and not left empty.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var palette = { "红灯": "#c62828", "黄灯": "#f9a825", "绿灯": "#2e7d32" };
  var statusColors = ["#2e7d32", "#0e7490", "#1d4ed8", "#c62828", "#9ca3af"];
  var drawn = 0;
  if (typeof Chart === "undefined") {
    document.body.dataset.charts = "unavailable";
    return;
  }
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false; // a projector or a screenshot shows the final picture at once
  Chart.defaults.maintainAspectRatio = false;

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    new Chart(canvas, config);
    canvas.dataset.rendered = "true";
    drawn += 1;
  }

  draw("chart-status", {
    type: "doughnut",
    data: { labels: data.status.labels, datasets: [{ data: data.status.values, backgroundColor: statusColors }] },
    options: { plugins: { legend: { position: "right" } } },
  });
  draw("chart-lights", {
    type: "doughnut",
    data: {
      labels: data.lights.labels,
      datasets: [{ data: data.lights.values, backgroundColor: data.lights.labels.map(function (l) { return palette[l]; }) }],
    },
    options: { plugins: { legend: { position: "right" } } },
  });
  draw("chart-chapters", {
    type: "bar",
    data: {
      labels: data.chapters.labels,
      datasets: Object.keys(data.chapters.series).map(function (name) {
        return { label: name, data: data.chapters.series[name], backgroundColor: palette[name] };
      }),
    },
    options: { indexAxis: "y", scales: { x: { stacked: true, ticks: { precision: 0 } }, y: { stacked: true } } },
  });
  draw("chart-compliance", {
    type: "bar",
    data: {
      labels: data.compliance.labels,
      datasets: [
        { label: "按时", data: data.compliance.on_time, backgroundColor: "#2e7d32" },
        { label: "逾期", data: data.compliance.late, backgroundColor: "#f9a825" },
        { label: "未报", data: data.compliance.missing, backgroundColor: "#c62828" },
      ],
    },
    options: { indexAxis: "y", scales: { x: { stacked: true, ticks: { precision: 0 } }, y: { stacked: true } } },
  });
  document.body.dataset.charts = String(drawn);
})();
