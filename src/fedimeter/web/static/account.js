// The account page's charts: one uPlot per metric, with a shared cursor, drawn from the JSON
// the server put in the page. No request leaves the page; nothing runs inline (see the CSP).
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const charts = {};
  window.fedimeterCharts = charts; // for the browser tests, and anyone curious

  function colour(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#3659c4";
  }
  const dates = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    timeZone: "UTC",
  });
  const counts = new Intl.NumberFormat();

  function draw(figure) {
    const metric = figure.dataset.metric;
    const box = figure.querySelector(".plot");
    const width = Math.max(280, box.clientWidth || figure.clientWidth || 600);
    const stroke = colour("--accent");
    const grid = colour("--line");
    const text = colour("--muted");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const chart = new uPlot({
      width: width,
      height: 240,
      cursor: { sync: { key: "fedimeter" }, points: { size: 7 } },
      legend: { live: true },
      scales: { x: { time: true } },
      axes: [
        Object.assign({}, axis),
        Object.assign({}, axis, { size: 64, values: (u, ticks) => ticks.map((v) => counts.format(v)) }),
      ],
      series: [
        { label: "Time (UTC)", value: (u, v) => (v == null ? "—" : dates.format(new Date(v * 1000))) },
        {
          label: figure.querySelector("figcaption").textContent,
          stroke: stroke,
          width: 2,
          points: { show: data.t.length <= 60, size: 4, fill: stroke },
          value: (u, v) => (v == null ? "—" : counts.format(v)),
        },
      ],
    }, [data.t, data[metric]], box);
    charts[metric] = chart;
    return chart;
  }

  function drawVisible() {
    document.querySelectorAll("#charts .chart").forEach((figure) => {
      const metric = figure.dataset.metric;
      if (!figure.hidden && !charts[metric] && data.t.length) draw(figure);
    });
  }

  document.querySelectorAll('input[name="metric"]').forEach((box) => {
    box.addEventListener("change", () => {
      const figure = document.querySelector(`#charts .chart[data-metric="${box.value}"]`);
      figure.hidden = !box.checked;
      drawVisible();
    });
  });

  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      Object.entries(charts).forEach(([metric, chart]) => {
        const box = document.querySelector(`#charts .chart[data-metric="${metric}"] .plot`);
        chart.setSize({ width: Math.max(280, box.clientWidth), height: 240 });
      });
    }, 100);
  });

  drawVisible();
})();
