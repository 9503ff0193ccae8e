// The replica lag chart of one target: uPlot (vendored, global `uPlot`) over
// buckets of min, max and mean from /api/history, with new samples from the
// live feed merged into the last bucket instead of refetching the history.

import {fetchJSON} from "./api.js";
import {duration} from "./dom.js";

// Each range is fetched in buckets of seconds / points.
export const RANGES = {
  "24h": {seconds: 86400, points: 288, label: "24 h"},
  "1h": {seconds: 3600, points: 360, label: "1 h"},
};
const HEIGHT = 180; // px

function cssColour(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function legendValue(u, value) {
  return value === null || value === undefined ? "–" : duration(value);
}

function historyPath(target, since, points) {
  return "api/history?metric=lag_seconds&check=replica_lag&subject=replication" +
    `&server=${encodeURIComponent(target)}&since=${since}&points=${points}`;
}

export class LagChart {
  constructor(target, container, onStatus) {
    this.target = target;
    this.container = container;
    this.onStatus = onStatus; // gets a short text for the caption
    this.range = "24h";
    this.buckets = []; // {time, min, max, mean, count}, oldest first
    this.loaded = false;
    this.plot = null;
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(container);
  }

  get width() {
    const range = RANGES[this.range];
    return range.seconds / range.points;
  }

  async setRange(name) {
    this.range = name;
    this.loaded = false;
    await this.load();
  }

  // Fetch the whole range once; later samples arrive through add().
  async load() {
    const range = RANGES[this.range];
    const since = Date.now() / 1000 - range.seconds;
    const buckets = await this.fetch(since, range.points);
    if (buckets === null) return;
    this.buckets = buckets;
    this.loaded = true;
    this.draw();
  }

  // Fetch the buckets from the last one on, after the feed was down.
  async fill() {
    if (!this.loaded || this.buckets.length === 0) return;
    const since = this.buckets[this.buckets.length - 1].time;
    const points = Math.min(10000, Math.max(1, Math.ceil((Date.now() / 1000 - since) /
      this.width)));
    const buckets = await this.fetch(since, points);
    if (buckets === null || buckets.length === 0) return;
    this.buckets = this.buckets.filter((b) => b.time < since).concat(buckets);
    this.draw();
  }

  // Return the buckets, [] when nothing is stored yet, null on failure.
  async fetch(since, points) {
    try {
      const history = await fetchJSON(historyPath(this.target, since.toFixed(3), points));
      return history.points;
    } catch (error) {
      // 404: no lag sample stored yet for this target.
      if (/HTTP 404|no stored series/.test(error.message)) return [];
      this.onStatus(`history unavailable: ${error.message}`);
      return null;
    }
  }

  // Merge one lag sample (epoch seconds, seconds) into the buckets.
  add(time, lag) {
    if (!this.loaded || typeof lag !== "number") return;
    const last = this.buckets[this.buckets.length - 1];
    if (last && time < last.time) return; // already in the history
    if (last && time < last.time + this.width) {
      last.min = Math.min(last.min, lag);
      last.max = Math.max(last.max, lag);
      last.mean += (lag - last.mean) / (last.count + 1);
      last.count += 1;
    } else {
      const start = last ? last.time + Math.floor((time - last.time) / this.width) *
        this.width : time;
      this.buckets.push({time: start, min: lag, max: lag, mean: lag, count: 1});
    }
    const oldest = Date.now() / 1000 - RANGES[this.range].seconds;
    while (this.buckets.length && this.buckets[0].time < oldest) this.buckets.shift();
    this.draw();
  }

  // Columns for uPlot: time, mean, min, max; a null row breaks the line at gaps.
  // Each bucket is drawn at its middle, or now for a bucket still filling.
  data() {
    const columns = [[], [], [], []];
    const now = Date.now() / 1000;
    let previous = null;
    for (const b of this.buckets) {
      if (previous && b.time - previous.time > 2 * this.width) {
        columns[0].push(previous.time + this.width);
        for (const i of [1, 2, 3]) columns[i].push(null);
      }
      columns[0].push(Math.min(b.time + this.width / 2, now));
      columns[1].push(b.mean);
      columns[2].push(b.min);
      columns[3].push(b.max);
      previous = b;
    }
    return columns;
  }

  draw() {
    const data = this.data();
    this.onStatus(this.buckets.length ? "" : "no lag samples stored yet");
    // The number of samples drawn, for tests and for a reader of the page.
    this.container.dataset.samples = this.buckets.reduce((n, b) => n + b.count, 0);
    if (data[0].length === 0) return;
    if (this.plot === null) {
      this.plot = new uPlot(this.options(), data, this.container);
    } else {
      this.plot.setData(data);
    }
  }

  // Recreate the plot, for a change of colour scheme.
  redraw() {
    if (this.plot !== null) this.plot.destroy();
    this.plot = null;
    this.draw();
  }

  resize() {
    if (this.plot !== null) {
      this.plot.setSize({width: this.container.clientWidth, height: HEIGHT});
    }
  }

  xRange() {
    const now = Date.now() / 1000;
    const first = this.buckets.length ? this.buckets[0].time : now;
    return [Math.max(now - RANGES[this.range].seconds, first), now];
  }

  options() {
    const line = cssColour("--accent");
    const grid = cssColour("--line");
    const text = cssColour("--muted");
    const axis = {stroke: text, grid: {stroke: grid, width: 1}, ticks: {stroke: grid}};
    return {
      width: this.container.clientWidth,
      height: HEIGHT,
      legend: {show: true, live: true},
      cursor: {drag: {x: false, y: false}},
      scales: {
        x: {time: true, range: () => this.xRange()},
        y: {range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.15)]},
      },
      axes: [axis, {...axis, size: 60, values: (u, ticks) => ticks.map(duration)}],
      series: [
        {},
        // uPlot shows the points only where they are sparse, as with one bucket.
        {label: "mean", stroke: line, width: 2, value: legendValue},
        {label: "min", stroke: "transparent", points: {show: false},
          value: legendValue},
        {label: "max", stroke: "transparent", points: {show: false},
          value: legendValue},
      ],
      bands: [{series: [3, 2], fill: cssColour("--band")}],
    };
  }
}
