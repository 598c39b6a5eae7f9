// A dataset's expectations across updates: failed rows per expectation (bars), passed rows on hover.
"use strict";

const source = document.getElementById("chart-data");
if (source && window.Chart) {
  const chart = JSON.parse(source.textContent);
  const palette = ["#b42318", "#9a6700", "#1f6feb", "#8250df", "#1a7f37", "#cf222e", "#0969da", "#bf3989"];
  const datasets = Object.entries(chart.series).map(([name, rows], index) => ({
    label: `${name} (failed)`,
    data: rows.failed,
    passed: rows.passed,
    backgroundColor: palette[index % palette.length],
  }));
  new window.Chart(document.getElementById("expectation-chart"), {
    type: "bar",
    data: { labels: chart.labels, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "failed rows" } } },
      plugins: {
        tooltip: {
          callbacks: {
            afterLabel: (item) => `passed: ${item.dataset.passed[item.dataIndex]}`,
          },
        },
      },
    },
  });
  document.getElementById("expectation-chart").dataset.rendered = String(datasets.length);
}
