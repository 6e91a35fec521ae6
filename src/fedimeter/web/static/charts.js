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
  // Dates as everywhere else on the page and in the graphs: ISO in the legend (2026-11-24
  // 03:00), month names on the axis (Nov 24, the year under the first tick and each new
  // year), in UTC; never the browser's US-style 11/24.
  function iso(seconds, withTime) {
    const text = new Date(seconds * 1000).toISOString();
    return withTime ? text.slice(0, 10) + " " + text.slice(11, 16) : text.slice(0, 10);
  }
  const DAY = 86400;
  // uPlot's tick formats: [step at least, format, then what is added when the year, month,
  // day, hour, minute or second changes (and on the first tick), mode 1 = added below].
  const TIME_TICKS = [
    [DAY * 365, "{YYYY}", null, null, null, null, null, null, 1],
    [DAY * 28, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
    [DAY, "{MMM} {D}", "\n{YYYY}", null, null, null, null, null, 1],
    [3600, "{HH}:{mm}", "\n{MMM} {D} {YYYY}", null, "\n{MMM} {D}", null, null, null, 1],
    [60, "{HH}:{mm}", "\n{MMM} {D} {YYYY}", null, "\n{MMM} {D}", null, null, null, 1],
    [1, ":{ss}", "\n{MMM} {D} {YYYY} {HH}:{mm}", null, "\n{MMM} {D} {HH}:{mm}", null,
      "\n{HH}:{mm}", null, 1],
  ];
  const counts = new Intl.NumberFormat("en");
  // Counts have whole-number ticks only: 1, 2 or 5 times a power of ten.
  const WHOLE_STEPS = [];
  for (let power = 1; power <= 1e15; power *= 10) WHOLE_STEPS.push(power, 2 * power, 5 * power);

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
    const chart = new uPlot({
      width: plotWidth(box),
      height: 220,
      cursor: { sync: { key: figure.dataset.source || "chart-data" }, points: { size: 7 } },
      legend: { live: true },
      scales: { x: xScale(data.t) },
      // Axis labels in UTC, like the legend and the rest of fedimeter.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      axes: [
        Object.assign({}, axis, { values: TIME_TICKS }),
        Object.assign({}, axis, {
          size: 64, incrs: WHOLE_STEPS, values: (u, ticks) => ticks.map((v) => counts.format(v)),
        }),
      ],
      series: [
        {
          label: weekly ? "Week from" : "Time (UTC)",
          value: (u, v) => (v == null ? "—" : iso(v, !weekly)),
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
