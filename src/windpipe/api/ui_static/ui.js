// windpipe's dashboard: fetches the figures from /ui/api/* and draws them with plotly.js.
// Every chart records what it drew (data-traces, data-points) and how long drawing took
// (data-draw-ms); <body data-ready="1"> says the page is complete (the browser tests read these).
"use strict";

(function () {
  const body = document.body;
  const root = body.dataset.root || "";
  const statusLine = document.getElementById("status");
  const DAY_MS = 86400000;
  const CONFIG = { displaylogo: false, responsive: true };
  const LAYOUT = {
    margin: { l: 60, r: 20, t: 10, b: 40 },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    font: { family: "system-ui, sans-serif", size: 12 },
    hovermode: "closest",
  };
  const timings = { fetchMs: 0, drawMs: 0 };

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  async function getJSON(path) {
    const started = performance.now();
    const response = await fetch(root + path, { headers: { Accept: "application/json" } });
    const data = await response.json();
    timings.fetchMs += performance.now() - started;
    if (!response.ok) {
      throw new Error(data.detail || "HTTP " + response.status);
    }
    return data;
  }

  function nextPaint() {
    return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  }

  // Draw one chart and record what was drawn and how long it took, up to the next paint.
  async function draw(id, traces, layout) {
    const div = document.getElementById(id);
    const started = performance.now();
    await Plotly.newPlot(div, traces, Object.assign({}, LAYOUT, layout), CONFIG);
    await nextPaint();
    const elapsed = performance.now() - started;
    timings.drawMs += elapsed;
    div.dataset.traces = String(div.data.length);
    div.dataset.points = div.data
      .map((trace) =>
        trace.z ? trace.z.length * (trace.z[0] || []).length : (trace.x || trace.r).length)
      .join(",");
    div.dataset.drawMs = elapsed.toFixed(1);
    return div;
  }

  function cell(row, content, className) {
    const td = document.createElement("td");
    if (content instanceof Node) {
      td.appendChild(content);
    } else {
      td.textContent = content === null || content === undefined ? "–" : String(content);
    }
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function head(table, names) {
    const row = table.createTHead().insertRow();
    for (const name of names) {
      const th = document.createElement("th");
      th.textContent = name;
      row.appendChild(th);
    }
  }

  function fixed(value, digits) {
    return value === null || value === undefined ? null : Number(value).toFixed(digits);
  }

  function age(minutes) {
    if (minutes === null || minutes === undefined) return "no data";
    if (minutes < 90) return minutes.toFixed(0) + " min";
    if (minutes < 48 * 60) return (minutes / 60).toFixed(1) + " h";
    return (minutes / 1440).toFixed(1) + " d";
  }

  function isoDay(ms) {
    return new Date(ms).toISOString().slice(0, 10);
  }

  function nextDay(day) {
    return isoDay(Date.parse(day + "T00:00:00Z") + DAY_MS);
  }

  function turbineDayUrl(turbine, day) {
    return (
      root + "/ui/turbine/" + encodeURIComponent(turbine) + "?start=" + day + "&end=" + nextDay(day)
    );
  }

  function dagsterPartitionUrl(turbine, day) {
    return (
      body.dataset.dagster +
      "/assets/" +
      body.dataset.dagsterAsset +
      "/" +
      encodeURIComponent(turbine) +
      "?view=partitions&partition=" +
      day
    );
  }

  function rangeQuery() {
    const params = new URLSearchParams();
    if (body.dataset.end) params.set("end", body.dataset.end);
    if (body.dataset.days) params.set("days", body.dataset.days);
    const text = params.toString();
    return text ? "?" + text : "";
  }

  function heatmap(data, z, title, colorscale, zmin, zmax, hover) {
    return {
      type: "heatmap",
      x: data.days,
      y: data.turbines,
      z: z,
      zmin: zmin,
      zmax: zmax,
      colorscale: colorscale,
      colorbar: { title: { text: title }, thickness: 12 },
      hoverongaps: false,
      xgap: 1,
      ygap: 1,
      hovertemplate: hover,
    };
  }

  function onCellClick(div, target) {
    div.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (point) window.location.href = target(point.y, point.x);
    });
  }

  // -- the farm overview -------------------------------------------------------------------------

  async function farm() {
    const data = await getJSON("/ui/api/overview" + rangeQuery());
    const table = document.getElementById("latest");
    head(table, ["turbine", "latest window (UTC)", "age", "wind speed (m/s)", "power (kW)", ""]);
    const rows = table.createTBody();
    for (const item of data.latest) {
      const row = rows.insertRow();
      cell(row, link(root + "/ui/turbine/" + encodeURIComponent(item.turbine), item.turbine));
      cell(row, item.timestamp ? item.timestamp.replace("T", " ").slice(0, 16) : null);
      cell(row, age(item.age_minutes));
      cell(row, fixed(item.values.wind_speed_mean, 1), "num");
      cell(row, fixed(item.values.power_mean, 0), "num");
      cell(row, item.stale ? "stale" : "fresh", item.stale ? "bad" : "good");
    }
    const height = 80 + 28 * data.turbines.length;
    const completeness = await draw(
      "completeness",
      [
        heatmap(
          data,
          data.completeness,
          "held",
          [
            [0, "#b2182b"],
            [0.9, "#fddbc7"],
            [1, "#1a9850"],
          ],
          0,
          1,
          "%{y} %{x}<br>%{z:.1%} of windows<extra></extra>",
        ),
      ],
      { height: height, xaxis: { type: "category", nticks: 10 }, yaxis: { type: "category" } },
    );
    onCellClick(completeness, turbineDayUrl);
    const energy = await draw(
      "energy",
      [
        Object.assign(
          heatmap(
            data,
            data.energy_mwh,
            "MWh",
            "Viridis",
            undefined,
            undefined,
            "%{y} %{x}<br>%{z:.2f} MWh<br>%{customdata}<extra></extra>",
          ),
          // A day with fewer windows than a whole day (today, a gap) is marked, not drawn as one.
          {
            text: data.energy_partial.map((row) => row.map((p) => (p ? "partial" : ""))),
            texttemplate: "%{text}",
            textfont: { size: 9, color: "#fff" },
            customdata: data.windows_held.map((row, i) =>
              row.map((held, j) =>
                data.energy_partial[i][j]
                  ? "partial day: " + held + " of " + data.windows_per_day + " windows"
                  : "whole day",
              ),
            ),
          },
        ),
      ],
      { height: height, xaxis: { type: "category", nticks: 10 }, yaxis: { type: "category" } },
    );
    onCellClick(energy, turbineDayUrl);
    const numbers = await farmNumbers();
    return data.days[0] + " to " + data.days[data.days.length - 1] + "; " + numbers;
  }

  function percent(value) {
    return value === null || value === undefined ? null : (100 * value).toFixed(1) + " %";
  }

  function farmRangeQuery() {
    const params = new URLSearchParams();
    if (body.dataset.start) params.set("start", body.dataset.start);
    if (body.dataset.end) params.set("end", body.dataset.end);
    const text = params.toString();
    return text ? "?" + text : "";
  }

  // The farm's numbers over a range, from the stored daily figures, and the turbines ranked by
  // their IEC power curve's deviation from the farm's median curve.
  async function farmNumbers() {
    const query = farmRangeQuery();
    const data = await getJSON("/ui/api/kpis" + query);
    document.getElementById("start").value = data.first;
    document.getElementById("end").value = nextDay(data.last);
    const hint = document.getElementById("kpi-hint");
    let summary = "figures " + data.first + " to " + data.last;
    if (!data.ready) {
      hint.textContent = data.hint;
      hint.classList.add("bad");
      summary += ": none stored";
    } else {
      const table = document.getElementById("farm-table");
      head(table, ["turbine", "energy (MWh)", "capacity factor", "availability (time)",
        "availability (energy)", "lost production (MWh)", "coverage"]);
      const rows = table.createTBody();
      for (const item of data.table) {
        const row = rows.insertRow();
        const farmRow = item.turbine === "*";
        cell(row, farmRow ? "farm" : link(root + "/ui/turbine/" + encodeURIComponent(item.turbine) +
          "?start=" + data.first + "&end=" + nextDay(data.last), item.turbine));
        cell(row, fixed(item.energy_kwh / 1000, 2), "num");
        cell(row, percent(item.capacity_factor), "num");
        cell(row, percent(item.availability_time), "num");
        cell(row, percent(item.availability_energy), "num");
        cell(row, fixed(item.lost_production_kwh / 1000, 2), "num");
        cell(row, percent(item.coverage), "num");
        if (farmRow) row.className = "total";
      }
      const grid = { days: data.days, turbines: data.turbines };
      const height = 80 + 28 * data.turbines.length;
      const availability = await draw(
        "availability",
        [
          heatmap(grid, data.availability_time, "available", [
            [0, "#b2182b"],
            [0.9, "#fddbc7"],
            [1, "#1a9850"],
          ], 0, 1, "%{y} %{x}<br>%{z:.1%} available (time)<extra></extra>"),
        ],
        { height: height, xaxis: { type: "category", nticks: 10 }, yaxis: { type: "category" } },
      );
      onCellClick(availability, turbineDayUrl);
      const lost = data.lost_by_category;
      await draw(
        "lost",
        lost.categories.map((category) => ({
          type: "bar",
          x: lost.turbines,
          y: lost.kwh[category],
          name: category.replaceAll("_", " "),
          hovertemplate: "%{x}: %{y:.0f} kWh<extra>" + category + "</extra>",
        })).concat(lost.categories.length ? [] : [{ type: "bar", x: lost.turbines,
          y: lost.turbines.map(() => 0), name: "no lost production" }]),
        { height: 320, barmode: "stack", yaxis: { title: { text: "kWh" } } },
      );
      summary += ", " + data.turbines.length + " turbines";
    }
    const curves = await getJSON("/ui/api/curves" + query);
    const ranking = curves.ranking;
    await draw(
      "deviation",
      [{
        type: "bar",
        orientation: "h",
        y: ranking.map((r) => r.turbine),
        x: ranking.map((r) => 100 * r.deviation),
        customdata: ranking.map((r) => r.windows),
        marker: { color: ranking.map((r) => (r.deviation < 0 ? "#b2182b" : "#1a9850")) },
        hovertemplate: "%{y}: %{x:.2f} % (%{customdata} windows)<extra></extra>",
        name: "deviation",
      }],
      {
        height: 80 + 28 * Math.max(1, ranking.length),
        xaxis: { title: { text: "energy-weighted deviation from the farm's median curve (%)" } },
        yaxis: { type: "category", autorange: "reversed" },
      },
    );
    return summary;
  }

  // -- one turbine -------------------------------------------------------------------------------

  // Whether a band's bound has anything to draw. The view leaves out the min and max series a
  // target does not aggregate (etl_aggregations = ["mean"]), and plotly plots a trace without y
  // against its point indices: the axis ran to the number of points (about 1000 m/s for a year).
  function held(values) {
    return Array.isArray(values) && values.some((v) => v !== null);
  }

  function band(t, low, high, mean, name, unit, colour) {
    const line = {
      type: "scatter",
      mode: "lines",
      x: t,
      y: mean,
      name: name + " mean",
      line: { color: colour, width: 1.2 },
      hovertemplate: "%{x|%Y-%m-%d %H:%M} UTC<br>%{y:.2f} " + unit + "<extra></extra>",
    };
    if (!held(low) || !held(high)) return [line];
    // The band bridges missing windows (connectgaps): filling between lines with gaps in them
    // draws wedges; the mean line shows the gap.
    const common = {
      type: "scatter",
      mode: "lines",
      x: t,
      hoverinfo: "skip",
      showlegend: false,
      connectgaps: true,
    };
    return [
      Object.assign({}, common, { y: low, line: { width: 0 }, name: name + " min" }),
      Object.assign({}, common, {
        y: high,
        line: { width: 0 },
        fill: "tonexty",
        fillcolor: colour.replace("rgb(", "rgba(").replace(")", ", 0.25)"),
        name: name + " min-max",
        showlegend: true,
      }),
      line,
    ];
  }

  // The power curve's windows: every one as a point (SVG markers) up to a few thousand, else a
  // density of them computed by the server (one image), drawn as fast for a year as for a day.
  function windowsTrace(data) {
    if (data.cloud) {
      return {
        type: "scatter",
        mode: "markers",
        x: data.cloud.wind_speed,
        y: data.cloud.power,
        marker: { size: 3, color: "rgba(31, 119, 180, 0.4)" },
        hoverinfo: "skip",
        name: "10-minute means (" + data.windows + ")",
        showlegend: true,
      };
    }
    const d = data.density;
    return {
      type: "heatmap",
      x0: d.x0,
      dx: d.dx,
      y0: d.y0,
      dy: d.dy,
      z: d.z,
      colorscale: "Blues",
      showscale: false,
      hovertemplate: "%{z} windows<extra></extra>",
      name: "density of " + d.windows + " 10-minute means",
      showlegend: true,
    };
  }

  function duration(minutes) {
    if (minutes % 1440 === 0) return minutes / 1440 + "-day";
    if (minutes % 60 === 0) return minutes / 60 + "-hour";
    return minutes + "-minute";
  }

  function dagsterDays(turbine, start, end) {
    const holder = document.getElementById("dagster-days");
    const first = Date.parse(start.slice(0, 10) + "T00:00:00Z");
    const last = Date.parse(end.slice(0, 10) + "T00:00:00Z");
    const days = Math.round((last - first) / DAY_MS);
    if (days < 1 || days > 7) return;
    // Dagster has partitions only for a fleet turbine's days with data, up to today.
    if (!body.dataset.dagsterFirst) return;
    const from = Math.max(first, Date.parse(body.dataset.dagsterFirst + "T00:00:00Z"));
    const upto = Math.min(
      last,
      Date.parse(body.dataset.dagsterLast + "T00:00:00Z") + DAY_MS,
      Date.parse(isoDay(Date.now()) + "T00:00:00Z") + DAY_MS,
    );
    if (from >= upto) return;
    holder.appendChild(document.createTextNode("Dagster partitions: "));
    for (let ms = from; ms < upto; ms += DAY_MS) {
      const a = link(dagsterPartitionUrl(turbine, isoDay(ms)), isoDay(ms));
      a.rel = "noopener";
      holder.appendChild(a);
      holder.appendChild(document.createTextNode(" "));
    }
  }

  // The wind rose: one stacked polar bar per speed class, its sectors' shares computed by the
  // server (the frequency of 10-minute windows by direction sector and speed class).
  const ROSE_COLOURS = ["#c6dbef", "#6baed6", "#2171b5", "#08306b", "#e6550d"];

  async function drawRose(rose) {
    const traces = rose.speed_classes.map((label, i) => ({
      type: "barpolar",
      r: rose.percent[i],
      theta: rose.directions,
      width: rose.directions.map(() => rose.sector_width),
      name: label + " m/s",
      marker: { color: ROSE_COLOURS[i % ROSE_COLOURS.length] },
      customdata: rose.counts[i],
      hovertemplate: "%{theta}°, " + label + " m/s: %{r:.1f} % (%{customdata} windows)" +
        "<extra></extra>",
    }));
    await draw("rose", traces, {
      height: 460,
      margin: { l: 40, r: 40, t: 30, b: 30 },
      polar: {
        angularaxis: { direction: "clockwise", rotation: 90, dtick: 45 },
        radialaxis: { ticksuffix: " %", angle: 90 },
      },
      legend: { title: { text: rose.windows + " windows" } },
    });
    document.getElementById("rose").dataset.windows = String(rose.windows);
  }

  async function turbine() {
    const id = body.dataset.turbine;
    const params = new URLSearchParams();
    if (body.dataset.start) params.set("start", body.dataset.start);
    if (body.dataset.end) params.set("end", body.dataset.end);
    // As many points per series as the chart has pixel columns: a longer range comes per bucket.
    const width = document.getElementById("wind").clientWidth || 1000;
    params.set("points", String(Math.max(50, Math.min(20000, Math.round(width)))));
    const query = "?" + params.toString();
    const data = await getJSON("/ui/api/turbine/" + encodeURIComponent(id) + query);
    document.getElementById("start").value = data.start.slice(0, 10);
    document.getElementById("end").value = data.end.slice(0, 10);
    dagsterDays(id, data.start, data.end);
    const s = data.series;
    const t = data.t;
    const axis = { type: "date", range: [data.start.slice(0, -1), data.end.slice(0, -1)] };
    const windTraces = band(t, s.wind_speed_min, s.wind_speed_max, s.wind_speed_mean,
      "wind speed", "m/s", "rgb(31, 119, 180)");
    const powerTraces = band(t, s.power_min, s.power_max, s.power_mean, "power", "kW",
      "rgb(214, 39, 40)");
    await draw(
      "wind",
      windTraces,
      { height: 300, xaxis: axis, yaxis: { title: { text: "m/s" }, rangemode: "tozero" } },
    );
    await draw("power", powerTraces, { height: 300, xaxis: axis, yaxis: { title: { text: "kW" } } });
    const cloud = windowsTrace(data);
    const note = document.getElementById("resolution");
    const banded = windTraces.length > 1 || powerTraces.length > 1;
    note.textContent = data.decimated
      ? "Resolution: " + duration(data.resolution_minutes) + " buckets (the mean of the " +
        data.window_minutes + "-minute means" +
        (banded ? ", the band from their lowest minimum to highest maximum: no peak is lost" : "") +
        "); choose a shorter range for every " + data.window_minutes + "-minute window."
      : "Resolution: every " + data.window_minutes + "-minute window.";
    await draw(
      "curve",
      [
        cloud,
        {
          type: "scatter",
          mode: "lines+markers",
          x: data.curve.wind_speed,
          y: data.curve.power,
          name: id + " binned (0.5 m/s)",
          line: { color: "rgb(214, 39, 40)", width: 2 },
          marker: { size: 5 },
          customdata: data.curve.n,
          hovertemplate: "%{x:.2f} m/s: %{y:.0f} kW (%{customdata} windows)<extra></extra>",
        },
        {
          type: "scatter",
          mode: "lines",
          x: data.farm_median.wind_speed,
          y: data.farm_median.power,
          name: "farm median",
          line: { color: "rgb(40, 40, 40)", width: 2, dash: "dash" },
          customdata: data.farm_median.turbines,
          hovertemplate: "%{x:.2f} m/s: %{y:.0f} kW (median of %{customdata})<extra></extra>",
        },
      ],
      {
        height: 460,
        xaxis: { title: { text: "wind speed, 10-minute mean (m/s)" }, rangemode: "tozero" },
        yaxis: { title: { text: "power, 10-minute mean (kW)" } },
        legend: { x: 0.01, y: 0.99 },
      },
    );
    await iecCurve(id, data.start, data.end);
    if (data.rose && document.getElementById("rose")) await drawRose(data.rose);
    body.dataset.windows = String(data.windows);
    body.dataset.resolution = String(data.resolution_minutes);
    return (
      data.start.slice(0, 16) + " to " + data.end.slice(0, 16) + " UTC, " + data.windows +
      " windows" + (data.decimated ? ", drawn as " + t.length + " " +
        duration(data.resolution_minutes) + " buckets" : "")
    );
  }

  // The IEC 61400-12-1 curve of the range: the full-performance windows beside every window,
  // the normalised bins with their spread (mean +- standard deviation), the warranted curve; and
  // the range's events. The windows come one per occupied cell of a grid finer than a marker
  // (a few thousand for a year; every window only where no full-performance one is drawn) and
  // are drawn as SVG: scattergl drew nothing but "WebGL is not supported" in a browser without
  // WebGL (headless Chromium, some VMs and remote desktops).
  async function iecCurve(id, start, end) {
    const query = "?start=" + start.slice(0, 19) + "&end=" + end.slice(0, 19);
    const data = await getJSON("/ui/api/turbine/" + encodeURIComponent(id) + "/curve" + query);
    const b = data.bins;
    const shown = (set) => (set.wind_speed.length < set.windows
      ? "; " + set.wind_speed.length + " spots drawn" : "");
    const traces = [
      {
        type: "scatter",
        mode: "markers",
        // one gap where every spot is full-performance: Plotly leaves an empty trace out of
        // the legend, which should still say how many windows there are
        x: data.all.wind_speed.length ? data.all.wind_speed : [null],
        y: data.all.power.length ? data.all.power : [null],
        name: "every window (" + data.all.windows + "; drawn where no full-performance " +
          "window is: " + data.all.wind_speed.length + " spots)",
        marker: { size: 3, color: "rgba(150, 150, 150, 0.5)" },
        hoverinfo: "skip",
      },
      {
        type: "scatter",
        mode: "markers",
        x: data.full_performance.wind_speed,
        y: data.full_performance.power,
        name: "full-performance windows (" + data.full_performance.windows +
          shown(data.full_performance) + ")",
        marker: { size: 3, color: "rgba(31, 119, 180, 0.6)" },
        hoverinfo: "skip",
      },
      {
        type: "scatter",
        mode: "lines+markers",
        x: b.wind_speed,
        y: b.power,
        name: "IEC curve, normalised (" + (data.complete ? "complete" : "incomplete") + ")",
        line: { color: "rgb(214, 39, 40)", width: 2 },
        marker: { size: 5 },
        error_y: {
          type: "data",
          array: b.power_std.map((v) => (v === null ? 0 : v)),
          visible: true,
          thickness: 1,
          width: 2,
          color: "rgba(214, 39, 40, 0.6)",
        },
        customdata: b.windows,
        hovertemplate: "V_n %{x:.2f} m/s: %{y:.0f} kW ± %{error_y.array:.0f} " +
          "(%{customdata} windows)<extra></extra>",
      },
    ];
    if (data.warranted) {
      traces.push({
        type: "scatter",
        mode: "lines",
        x: data.warranted.wind_speed,
        y: data.warranted.power,
        name: "warranted",
        line: { color: "rgb(44, 160, 44)", width: 2, dash: "dot" },
      });
    }
    await draw("iec-curve", traces, {
      height: 460,
      xaxis: { title: { text: "wind speed (m/s; the bins: normalised V_n)" }, rangemode: "tozero" },
      yaxis: { title: { text: "power, 10-minute mean (kW)" } },
      legend: { x: 0.01, y: 0.99 },
    });
    const table = document.getElementById("events");
    head(table, ["start (UTC)", "end (UTC)", "code", "category", "message"]);
    const rows = table.createTBody();
    for (const event of data.events) {
      const row = rows.insertRow();
      cell(row, event.start.replace("T", " ").slice(0, 16));
      cell(row, event.end ? event.end.replace("T", " ").slice(0, 16) : "ongoing");
      cell(row, event.code);
      cell(row, event.category.replaceAll("_", " ") + (event.known_code ? "" : " (unknown code)"),
        event.category === "full_performance" ? "good" : "bad");
      cell(row, event.message);
    }
    if (!data.events.length) cell(rows.insertRow(), "no event in this range");
    table.dataset.events = String(data.events.length);
  }

  // -- data quality ------------------------------------------------------------------------------

  async function quality() {
    const data = await getJSON("/ui/api/quality" + rangeQuery());
    const stale = document.getElementById("stale");
    head(stale, ["turbine", "latest window (UTC)", "age"]);
    const staleRows = stale.createTBody();
    for (const item of data.stale) {
      const row = staleRows.insertRow();
      cell(row, link(root + "/ui/turbine/" + encodeURIComponent(item.turbine), item.turbine));
      cell(row, item.timestamp ? item.timestamp.replace("T", " ").slice(0, 16) : null);
      cell(row, age(item.age_minutes), "bad");
    }
    if (!data.stale.length) {
      cell(staleRows.insertRow(), "none: every turbine's latest window is within " +
        data.freshness_lag_minutes + " minutes");
    }
    const height = 80 + 28 * data.turbines.length;
    const missing = await draw(
      "missing",
      [
        Object.assign(
          heatmap(
            data,
            data.missing,
            "missing",
            [
              [0, "#f7f7f7"],
              [0.01, "#fddbc7"],
              [1, "#b2182b"],
            ],
            0,
            Math.max(1, ...data.windows_expected.flat()),
            "%{y} %{x}<br>%{z} windows missing<extra></extra>",
          ),
          { text: data.missing, texttemplate: "%{z}", textfont: { size: 9 } },
        ),
      ],
      { height: height, xaxis: { type: "category", nticks: 10 }, yaxis: { type: "category" } },
    );
    onCellClick(missing, turbineDayUrl);
    const gaps = document.getElementById("gaps");
    head(gaps, ["turbine", "day", "missing windows", "", ""]);
    const gapRows = gaps.createTBody();
    data.turbines.forEach((turbineId, i) => {
      data.days.forEach((day, j) => {
        const count = data.missing[i][j];
        if (!count) return;
        const row = gapRows.insertRow();
        cell(row, turbineId);
        cell(row, day);
        cell(row, count + " of " + data.windows_expected[i][j], "num");
        cell(row, link(turbineDayUrl(turbineId, day), "view"));
        // Only turbines of the fleet have a Dagster asset (and so partitions) to link to.
        if (data.dagster_turbines.includes(turbineId)) {
          const dagster = link(dagsterPartitionUrl(turbineId, day), "Dagster partition");
          dagster.rel = "noopener";
          cell(row, dagster);
        } else {
          cell(row, "not in the fleet");
        }
      });
    });
    const flagged = await flagCounts(data);
    return data.missing_total + " windows missing, " + flagged + ", " + data.days[0] + " to " +
      data.days[data.days.length - 1];
  }

  // Quality flags per (turbine, day, flag): a stacked bar per turbine and a table linking each
  // row to the turbine's day.
  async function flagCounts(data) {
    const flags = data.flags;
    const hint = document.getElementById("flag-hint");
    if (!flags.ready) {
      hint.textContent = flags.hint;
      hint.classList.add("bad");
      return "no flags stored";
    }
    const names = [...new Set(flags.rows.map((r) => r.flag))].sort();
    const turbines = [...new Set(flags.rows.map((r) => r.turbine))].sort();
    const total = (turbine, flag) => flags.rows
      .filter((r) => r.turbine === turbine && r.flag === flag)
      .reduce((sum, r) => sum + r.flags, 0);
    await draw(
      "flag-chart",
      names.map((flag) => ({
        type: "bar",
        x: turbines,
        y: turbines.map((t) => total(t, flag)),
        name: flag.replaceAll("_", " "),
        hovertemplate: "%{x}: %{y} flags<extra>" + flag + "</extra>",
      })).concat(names.length ? [] : [{ type: "bar", x: [], y: [], name: "no flag" }]),
      { height: 300, barmode: "stack", yaxis: { title: { text: "flags" } } },
    );
    const table = document.getElementById("flags");
    head(table, ["turbine", "day", "flag", "flags", "windows", ""]);
    const rows = table.createTBody();
    for (const item of flags.rows) {
      const row = rows.insertRow();
      cell(row, item.turbine);
      cell(row, item.day);
      cell(row, item.flag);
      cell(row, item.flags, "num");
      cell(row, item.windows, "num");
      cell(row, link(turbineDayUrl(item.turbine, item.day), "view"));
    }
    if (!flags.rows.length) cell(rows.insertRow(), "no flag in these " + flags.flagged_days +
      " flagged turbine-days");
    return flags.total + " flags";
  }

  const pages = { farm: farm, turbine: turbine, quality: quality };

  async function main() {
    const started = performance.now();
    try {
      const summary = await pages[body.dataset.page]();
      setStatus(summary);
    } catch (error) {
      setStatus(String(error.message || error), true);
      body.dataset.error = String(error.message || error);
    }
    body.dataset.fetchMs = timings.fetchMs.toFixed(1);
    body.dataset.drawMs = timings.drawMs.toFixed(1);
    body.dataset.totalMs = (performance.now() - started).toFixed(1);
    body.dataset.ready = "1";
  }

  main();
})();
