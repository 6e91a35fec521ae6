// Time-series charts: one uPlot per <figure class="chart">, with a shared cursor, drawn from
// JSON the server put in the page (<script type="application/json">). A figure names its
// series with data-metric and its data block with data-source (default "chart-data"). No
// request leaves the page and nothing runs inline (see the Content-Security-Policy).
"use strict";
(function () {
  const blocks = {};
  function block(id) {
    if (!(id in blocks)) {
      const element = document.getElementById(id);
      blocks[id] = element ? JSON.parse(element.textContent) : { t: [] };
    }
    return blocks[id];
  }
  const charts = {};
  window.fedimeterCharts = charts; // for the browser tests, and anyone curious

  function colour(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }
  const dates = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    timeZone: "UTC",
  });
  const days = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", timeZone: "UTC",
  });
  const counts = new Intl.NumberFormat();

  function plotWidth(box) {
    return Math.max(260, box.clientWidth || 600);
  }

  // One sample (or several at one moment): a day either side, not years of empty axis.
  function xScale(times) {
    const first = times[0];
    const last = times[times.length - 1];
    if (first !== last) return { time: true };
    return { time: true, auto: false, range: [first - 86400, last + 86400] };
  }

  function draw(figure) {
    const metric = figure.dataset.metric;
    const data = block(figure.dataset.source || "chart-data");
    const weekly = figure.dataset.source === "weeks-data";
    const box = figure.querySelector(".plot");
    const stroke = colour("--accent", "#3659c4");
    const grid = colour("--line", "#dfe3ea");
    const text = colour("--muted", "#5b6475");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const when = weekly ? days : dates;
    const chart = new uPlot({
      width: plotWidth(box),
      height: 220,
      cursor: { sync: { key: figure.dataset.source || "chart-data" }, points: { size: 7 } },
      legend: { live: true },
      scales: { x: xScale(data.t) },
      // Axis labels in UTC, like the legend and the rest of fedimeter.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      axes: [
        Object.assign({}, axis),
        Object.assign({}, axis, { size: 64, values: (u, ticks) => ticks.map((v) => counts.format(v)) }),
      ],
      series: [
        {
          label: weekly ? "Week from" : "Time (UTC)",
          value: (u, v) => (v == null ? "—" : when.format(new Date(v * 1000))),
        },
        {
          label: figure.querySelector("figcaption").textContent,
          stroke: stroke,
          width: 2,
          spanGaps: false,
          points: { show: data.t.length <= 60, size: 4, fill: stroke },
          value: (u, v) => (v == null ? "—" : counts.format(v)),
        },
      ],
    }, [data.t, data[metric]], box);
    charts[metric] = chart;
  }

  function drawVisible() {
    document.querySelectorAll("figure.chart").forEach((figure) => {
      const data = block(figure.dataset.source || "chart-data");
      if (!figure.hidden && !charts[figure.dataset.metric] && data.t.length) draw(figure);
    });
  }

  document.querySelectorAll('input[name="metric"]').forEach((box) => {
    box.addEventListener("change", () => {
      const figure = document.querySelector(`figure.chart[data-metric="${box.value}"]`);
      figure.hidden = !box.checked;
      drawVisible();
    });
  });

  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      Object.entries(charts).forEach(([metric, chart]) => {
        const box = document.querySelector(`figure.chart[data-metric="${metric}"] .plot`);
        chart.setSize({ width: plotWidth(box), height: 220 });
      });
    }, 100);
  });

  drawVisible();
})();
