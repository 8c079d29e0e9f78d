// Brief's web page: ask, watch the job live, read the cited report.
//
// Progress arrives as server-sent events from GET /jobs/{id}/events, read with fetch() and a
// streamed body rather than EventSource: EventSource cannot send headers, and an API key
// must never travel in a URL (URLs end up in logs and history). The reader resumes with
// Last-Event-ID after a dropped connection, exactly as EventSource would; where streaming is
// unavailable (or a proxy buffers the stream) it falls back to polling the cursor page.
//
// Text from sources and reports is only ever inserted with textContent / text nodes: the
// page never sets innerHTML.
"use strict";

(() => {
  const KEY_STORAGE = "brief.apiKey";
  const TERMINAL = new Set(["report_ready", "job_failed", "job_cancelled"]);
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, title, detail) {
      super(detail || title || `HTTP ${status}`);
      this.status = status;
      this.title = title;
    }
  }

  function apiKey() {
    try {
      return localStorage.getItem(KEY_STORAGE) || "";
    } catch {
      return "";
    }
  }

  function headers(extra) {
    const h = Object.assign({}, extra);
    const key = apiKey();
    if (key) h.Authorization = `Bearer ${key}`;
    return h;
  }

  async function failure(response) {
    let title = response.statusText;
    let detail = "";
    try {
      const problem = await response.json();
      title = problem.title || title;
      detail = problem.detail || "";
    } catch {
      // not JSON: keep the status line
    }
    return new ApiError(response.status, title, detail);
  }

  async function api(path, { method = "GET", body, accept = "application/json", signal } = {}) {
    const init = { method, headers: headers({ Accept: accept }), signal, cache: "no-store" };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    if (!response.ok) throw await failure(response);
    return accept === "application/json" ? response.json() : response.text();
  }

  // ------------------------------------------------------------------ live events

  const sleep = (ms, signal) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      if (signal) signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
    });

  const canStream = typeof TextDecoderStream === "function" && typeof ReadableStream === "function";

  // Follow a job's events until its terminal event; `onEvent(event, cursor)` sees each once.
  async function followEvents(jobId, onEvent, signal) {
    const state = { lastId: null, retry: 1000, done: false };
    let failures = 0;
    while (!signal.aborted && !state.done) {
      try {
        if (canStream) await streamOnce(jobId, state, onEvent, signal);
        else await pollOnce(jobId, state, onEvent, signal);
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.status < 500 && err.status !== 429) throw err;
        failures += 1;
      }
      if (!state.done) await sleep(Math.min(state.retry * 2 ** Math.min(failures, 4), 15000), signal);
    }
  }

  async function streamOnce(jobId, state, onEvent, signal) {
    const extra = { Accept: "text/event-stream" };
    if (state.lastId) extra["Last-Event-ID"] = state.lastId;
    const response = await fetch(`/jobs/${jobId}/events`, { headers: headers(extra), signal, cache: "no-store" });
    if (!response.ok) throw await failure(response);
    if (response.status === 204) { // resumed after the job's last event: nothing more will come
      state.done = true;
      return;
    }
    if (!(response.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
      deliverPage(await response.json(), state, onEvent); // a proxy answered the page instead
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let message = { id: null, event: "message", data: [] };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        for (const line of lines) {
          if (line === "") {
            if (message.data.length) {
              if (message.id !== null) state.lastId = message.id;
              const event = JSON.parse(message.data.join("\n"));
              onEvent(event, state.lastId);
              if (TERMINAL.has(event.kind)) {
                state.done = true;
                return;
              }
            }
            message = { id: null, event: "message", data: [] };
            continue;
          }
          if (line.startsWith(":")) continue; // a heartbeat
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "data") message.data.push(value);
          else if (field === "id") message.id = value;
          else if (field === "event") message.event = value;
          else if (field === "retry" && /^\d+$/.test(value)) state.retry = Number(value);
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  async function pollOnce(jobId, state, onEvent, signal) {
    const query = state.lastId ? `?after=${encodeURIComponent(state.lastId)}` : "";
    deliverPage(await api(`/jobs/${jobId}/events${query}`, { signal }), state, onEvent);
  }

  function deliverPage(page, state, onEvent) {
    for (const event of page.events) {
      onEvent(event, null);
      if (TERMINAL.has(event.kind)) state.done = true;
    }
    if (page.cursor) state.lastId = page.cursor;
  }

  // ------------------------------------------------------------------ a tiny, safe Markdown

  const INLINE = /\*\*(.+?)\*\*|`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)|\[(\d+)\]|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;

  function safeUrl(raw) {
    try {
      const url = new URL(raw, window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  function link(text, href, extraClass) {
    const url = safeUrl(href);
    if (!url) return document.createTextNode(text);
    const a = document.createElement("a");
    a.href = url;
    a.textContent = text;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    if (extraClass) a.className = extraClass;
    return a;
  }

  // Inline Markdown as DOM nodes: **bold**, `code`, [text](url), citations [n], bare URLs.
  function inline(text, citations) {
    const nodes = [];
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) nodes.push(document.createTextNode(text.slice(last, m.index)));
      if (m[1] !== undefined) {
        const strong = document.createElement("strong");
        strong.append(...inline(m[1], citations));
        nodes.push(strong);
      } else if (m[2] !== undefined) {
        const code = document.createElement("code");
        code.textContent = m[2];
        nodes.push(code);
      } else if (m[3] !== undefined) {
        nodes.push(link(m[3], m[4]));
      } else if (m[5] !== undefined) {
        nodes.push(citation(Number(m[5]), citations));
      } else {
        nodes.push(link(m[6], m[6]));
      }
      last = m.index + m[0].length;
    }
    if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
    return nodes;
  }

  function citation(n, citations) {
    const source = citations.get(n);
    const label = `[${n}]`;
    if (!source) return document.createTextNode(label);
    const node = link(label, source.url, "cite");
    const name = source.title || source.url;
    if (node.nodeType === Node.ELEMENT_NODE) {
      node.title = name;
      node.setAttribute("aria-label", `source ${n}: ${name}`);
      return node;
    }
    const span = document.createElement("span"); // not a web address (an s3:// document)
    span.className = "cite";
    span.title = name;
    span.textContent = label;
    return span;
  }

  // Block Markdown: headings (shifted below the page's own), bullet and numbered lists,
  // one-line quotes (the report's notes), paragraphs. Returns a DocumentFragment; nothing is
  // parsed as HTML.
  function renderMarkdown(markdown, citations, headingShift = 2) {
    const root = document.createDocumentFragment();
    let paragraph = null;
    let list = null;
    const close = () => { paragraph = null; list = null; };
    for (const raw of markdown.split(/\r?\n/)) {
      const line = raw.trimEnd();
      let m;
      if (!line.trim()) {
        close();
      } else if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) {
        close();
        const h = document.createElement(`h${Math.min(m[1].length + headingShift, 6)}`);
        h.append(...inline(m[2], citations));
        root.append(h);
      } else if ((m = /^>\s?(.*)$/.exec(line))) {
        close();
        const quote = document.createElement("blockquote");
        quote.append(...inline(m[1], citations));
        root.append(quote);
      } else if ((m = /^\s*[-*+]\s+(.*)$/.exec(line)) || (m = /^\s*(\d+)[.)]\s+(.*)$/.exec(line))) {
        const ordered = m.length === 3;
        const tag = ordered ? "OL" : "UL";
        if (!list || list.tagName !== tag) {
          paragraph = null;
          list = document.createElement(tag);
          if (ordered && m[1] !== "1") list.start = Number(m[1]);
          root.append(list);
        }
        const li = document.createElement("li");
        li.append(...inline(ordered ? m[2] : m[1], citations));
        list.append(li);
      } else if (list && /^\s{2,}\S/.test(raw)) {
        list.lastElementChild.append(" ", ...inline(line.trim(), citations)); // a continuation
      } else {
        list = null;
        if (!paragraph) {
          paragraph = document.createElement("p");
          root.append(paragraph);
        } else {
          paragraph.append(" ");
        }
        paragraph.append(...inline(line.trim(), citations));
      }
    }
    return root;
  }

  // ------------------------------------------------------------------ the job on screen

  const STATE_TEXT = {
    waiting: "waiting",
    fetching: "fetching…",
    fetched: "fetched",
    cached: "fetched (cached)",
    failed: "could not be used",
    skipped: "not summarized (over the job's limit)",
    summarized: "summarized",
    unsummarized: "not summarized",
  };

  // { id, controller, createdAt, sources: Map(index -> item), seen: Map(index -> state from
  // the events), timer, and for a deep job: depth (when known), tree, level, retrievedLevel }
  let current = null;

  function elapsedSeconds(at) {
    if (!current || !current.createdAt) return 0;
    return Math.max(0, (Date.parse(at) - current.createdAt) / 1000);
  }

  function slotsOf(sources) {
    // The document indexes each source will get, known in advance (as the API assigns them).
    const slots = [];
    for (const spec of sources) {
      if (typeof spec === "string") slots.push({ label: spec, url: spec });
      else if (spec.search) {
        const limit = spec.limit || 5;
        for (let k = 1; k <= limit; k++) slots.push({ label: `result ${k} of the search “${spec.search}”` });
      } else if (spec.vector) {
        for (let k = 1; k <= (spec.top_k || 5); k++) slots.push({ label: `passage ${k} for “${spec.vector}”` });
      }
    }
    return slots;
  }

  function renderSources(slots) {
    const list = $("source-list");
    list.replaceChildren();
    current.sources = new Map();
    slots.forEach((slot, position) => {
      const index = slot.index ?? position;
      const li = document.createElement("li");
      li.className = "source";
      li.value = index + 1; // its number, as the events and the report show it: index + 1
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.setAttribute("aria-hidden", "true");
      const number = document.createElement("span");
      number.className = "n";
      number.textContent = `[${index + 1}]`;
      const name = document.createElement("span");
      name.className = "name";
      name.append(number, " ", slot.url ? link(slot.title || slot.label, slot.url) : document.createTextNode(slot.label));
      const state = document.createElement("span");
      state.className = "state";
      const reason = document.createElement("span");
      reason.className = "reason";
      li.append(mark, name, state, reason);
      list.append(li);
      const item = { li, state, reason, value: null, reasonText: "" };
      current.sources.set(index, item);
      setSource(index, slot.state || "waiting", slot.reason);
    });
  }

  function setSource(index, value, reason) {
    if (!current) return;
    current.seen.set(index, { value, reason: reason || "" });
    const item = current.sources.get(index);
    if (!item) return; // a later level's source: listed when the view is next fetched
    item.value = value;
    item.reasonText = reason || "";
    item.li.dataset.state = value;
    item.state.textContent = STATE_TEXT[value] || value;
    item.reason.textContent = reason ? ` — ${reason}` : "";
  }

  function setStatus(text) {
    $("job-status").textContent = text;
  }

  // A deep job's questions as a nested list: the job's own question, the follow-up questions
  // of level 2 under it, those of level 3 under their parents. Each shows the numbers of the
  // sources that answered it, "searching…" while its level runs, or "nothing found" once its
  // level's sources are fetched and none answered it. Ordinary jobs (no tree) show nothing.
  function renderTree() {
    const job = current;
    const panel = $("tree-panel");
    const root = $("tree");
    if (!job || !job.tree || !job.tree.length) {
      panel.hidden = true;
      root.replaceChildren();
      return;
    }
    const items = new Map();
    for (const node of job.tree) {
      const li = document.createElement("li");
      li.dataset.node = node.node;
      li.dataset.level = String(node.level);
      const number = document.createElement("span");
      number.className = "node";
      number.textContent = node.node;
      const question = document.createElement("span");
      question.className = "q";
      question.textContent = node.question;
      const found = document.createElement("span");
      found.className = "found";
      if (node.sources.length) {
        li.dataset.state = "answered";
        found.textContent = node.sources.map((index) => `[${index + 1}]`).join(""); // as the list numbers them
      } else if (job.ended || node.level <= job.retrievedLevel) {
        li.dataset.state = "nothing";
        found.textContent = "nothing found";
      } else {
        li.dataset.state = "searching";
        found.textContent = "searching…";
      }
      li.append(number, " ", question, " ", found);
      items.set(node.node, li);
    }
    root.replaceChildren();
    for (const node of job.tree) {
      const li = items.get(node.node);
      const parent = node.parent !== null && items.get(node.parent);
      if (!parent) {
        root.append(li);
        continue;
      }
      let list = parent.querySelector(":scope > ul");
      if (!list) {
        list = document.createElement("ul");
        parent.append(list);
      }
      list.append(li);
    }
    panel.hidden = false;
  }

  function setBar(fraction) {
    let shown = Math.min(1, Math.max(0, fraction));
    if (current && current.tree && shown < 1) {
      // A deep job runs every stage once per level: each level fills its share of the bar
      // when the number of levels is known (the job was asked on this page), and the bar
      // never goes back (a job opened by its address: the request's depth is not shown).
      if (current.depth) shown = (current.level - 1 + shown) / Math.max(current.depth, current.level);
      shown = Math.max(shown, current.bar || 0);
    }
    if (current) current.bar = shown;
    $("job-bar").style.width = `${Math.round(shown * 100)}%`;
  }

  function logEvent(event) {
    const li = document.createElement("li");
    li.dataset.kind = event.kind;
    const time = document.createElement("span");
    time.className = "t";
    time.textContent = `${elapsedSeconds(event.at).toFixed(2)} s`;
    const what = document.createElement("span");
    what.className = "k";
    let text = event.kind.replace(/_/g, " ");
    if (event.index !== null && event.index !== undefined) text += ` [${event.index + 1}]`;
    what.textContent = text;
    li.append(time, what);
    if (event.detail) {
      const detail = document.createElement("span");
      detail.className = "d";
      detail.textContent = event.detail;
      li.append(detail);
    }
    const log = $("event-log");
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    log.append(li);
    if (atEnd) log.scrollTop = log.scrollHeight; // follow the newest, unless the reader scrolled up
  }

  function counts() {
    let fetched = 0, failed = 0, summarized = 0, unsummarized = 0;
    for (const item of current.sources.values()) {
      if (item.value === "fetched" || item.value === "cached") fetched += 1;
      else if (item.value === "failed") failed += 1;
      else if (item.value === "summarized") { fetched += 1; summarized += 1; }
      else if (item.value === "unsummarized") { fetched += 1; unsummarized += 1; }
    }
    return { fetched, failed, summarized, unsummarized, total: current.sources.size };
  }

  // The answer as the model writes it: each report_text event adds its text at its offset
  // (0 starts the draft over, after a retried call). The report at report_ready replaces it.
  function showDraft(event) {
    const job = current;
    job.draft = (job.draft || "").slice(0, event.offset || 0) + (event.text || "");
    if (job.reported) return;
    $("report").hidden = false;
    $("report").dataset.draft = "true";
    $("report-draft").hidden = false;
    $("report-body").replaceChildren(renderMarkdown(job.draft, new Map()));
  }

  function onEvent(event) {
    if (!current) return;
    if (event.kind === "job_created" && !current.createdAt) current.createdAt = Date.parse(event.at);
    if (event.kind === "report_text") {
      showDraft(event);
      return; // drafts grow the report, not the event log
    }
    logEvent(event);
    const c = () => counts();
    switch (event.kind) {
      case "job_created":
        setStatus("Queued: waiting for a worker to start…");
        setBar(0.03);
        break;
      case "retrieval_started":
        for (const [index, item] of current.sources) if (item.value === "waiting") setSource(index, "fetching");
        if (event.detail) setStatus(`Fetching what the follow-up searches found (${event.detail})…`); // "level 2"
        else setStatus(`Fetching ${current.sources.size} source${current.sources.size === 1 ? "" : "s"} at once…`);
        setBar(0.08);
        break;
      case "source_fetched":
      case "source_failed": {
        if (event.kind === "source_fetched") setSource(event.index, event.detail === "cached" ? "cached" : "fetched");
        else setSource(event.index, "failed", event.detail);
        const n = c();
        setStatus(`Fetching sources: ${n.fetched + n.failed} of ${n.total} done${n.failed ? ` (${n.failed} could not be used)` : ""}.`);
        setBar(0.08 + 0.4 * ((n.fetched + n.failed) / Math.max(1, n.total)));
        break;
      }
      case "retrieval_done":
        setStatus(`Fetched: ${event.detail || "done"}. Summarizing every source at once…`);
        setBar(0.5);
        // Titles, which search results there turned out to be, and the tree: its questions
        // of this level with no source are "nothing found" once the view says so.
        refreshView(current.level);
        break;
      case "level_started": {
        // "level 2: 3 follow-up questions": the combine of the level before asked them.
        const m = /level (\d+)/.exec(event.detail || "");
        current.level = m ? Number(m[1]) : current.level + 1;
        if (!current.tree) current.tree = [];
        setStatus(`Deep research, ${event.detail || `level ${current.level}`}: searching the web for each…`);
        setBar(0.03);
        refreshView();
        break;
      }
      case "summary_done":
      case "summary_failed": {
        setSource(event.index, event.kind === "summary_done" ? "summarized" : "unsummarized", event.detail);
        const n = c();
        const usable = Math.max(1, n.fetched);
        setStatus(`Summarizing: ${n.summarized + n.unsummarized} of ${n.fetched} sources done.`);
        setBar(0.5 + 0.4 * ((n.summarized + n.unsummarized) / usable));
        break;
      }
      case "combine_started":
        setStatus("Combining the summaries into one cited report…");
        setBar(0.93);
        break;
      case "report_ready":
        setStatus(`Report ready after ${elapsedSeconds(event.at).toFixed(1)} s.`);
        setBar(1);
        finish("done");
        if (current.tree) refreshView(); // the tree as the report has it
        showReport(current.id);
        break;
      case "job_failed":
        setStatus(`The job failed: ${event.detail || "no reason given"}`);
        finish("failed");
        break;
      case "job_cancelled":
        setStatus("The job was cancelled.");
        finish("cancelled");
        break;
      default:
        break;
    }
  }

  function finish(outcome) {
    current.ended = true;
    renderTree();
    $("job").dataset.outcome = outcome;
    $("cancel").hidden = true;
    clearInterval(current.timer);
    current.timer = null;
    loadJobs();
  }

  // The job's view again: its sources (with titles, and a deep job's later levels) and its
  // tree, whose questions up to `retrieved` (a level whose sources are all fetched) show
  // "nothing found" when no source answered them. Of two fetches that cross, only the later
  // one is shown.
  async function refreshView(retrieved = 0) {
    const job = current;
    const asked = (job.viewAsked = (job.viewAsked || 0) + 1);
    const settle = () => {
      job.retrievedLevel = Math.max(job.retrievedLevel, retrieved);
      if (job === current) renderTree();
    };
    try {
      const view = await api(`/jobs/${job.id}`);
      if (job !== current) return;
      if (asked < (job.viewShown || 0)) {
        settle();
        return;
      }
      job.viewShown = asked;
      if (view.tree) job.tree = view.tree;
      settle();
      if (!view.sources.length) return;
      renderSources(
        view.sources.map((s) => {
          const before = job.seen.get(s.index); // what the events said, maybe not listed yet
          const kept = before && (before.value === "summarized" || before.value === "unsummarized");
          return {
            index: s.index,
            url: s.url,
            title: s.title,
            label: s.url,
            state: kept ? before.value : s.state === "ok" ? "fetched" : s.state,
            reason: kept ? before.reason : s.reason,
          };
        }),
      );
    } catch {
      // the list from the request stays; the events go on updating it
      settle();
    }
  }

  async function showReport(jobId) {
    try {
      const report = await api(`/jobs/${jobId}/report`);
      if (!current || current.id !== jobId) return;
      const citations = new Map(report.citations.map((c) => [c.n, c]));
      current.reported = true;
      $("report-body").replaceChildren(renderMarkdown(report.markdown, citations));
      $("report").dataset.draft = "false";
      $("report-draft").hidden = true;
      const cost = $("report-cost");
      cost.textContent = usageText(report.usage, report.stage_usage);
      cost.hidden = !cost.textContent;
      const download = $("report-download");
      if (download.href.startsWith("blob:")) URL.revokeObjectURL(download.href);
      download.href = URL.createObjectURL(new Blob([report.markdown], { type: "text/markdown" }));
      download.download = `brief-${jobId}.md`;
      $("report").hidden = false;
      $("report-heading").focus();
    } catch (err) {
      setStatus(`The report could not be loaded: ${err.message}`);
    }
  }

  // The report as a file (HTML, PDF or Word), fetched with this page's key and saved.
  async function downloadReport(format) {
    if (!current) return;
    const jobId = current.id;
    try {
      const response = await fetch(`/jobs/${jobId}/report?format=${format}`, {
        headers: headers({}),
        cache: "no-store",
      });
      if (!response.ok) throw await failure(response);
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = `brief-${jobId}.${format}`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    } catch (err) {
      setStatus(`The ${format.toUpperCase()} could not be made: ${err.message}`);
    }
  }

  // "Model: 6 calls, 5,210 tokens in, 640 out, about $0.0012 (summarize $0.0004, combine
  // $0.0008)"; empty when no model was called (the offline summarizer costs nothing).
  function usageText(usage, stages) {
    if (!usage || !usage.calls) return "";
    const dollars = (u) => `$${(u.cost_usd || 0).toFixed(4)}`;
    let text =
      `Model: ${usage.calls} calls, ${usage.input_tokens.toLocaleString("en")} tokens in, ` +
      `${usage.output_tokens.toLocaleString("en")} out, about ${dollars(usage)}`;
    const parts = Object.entries(stages || {})
      .filter(([, u]) => u.calls)
      .map(([name, u]) => `${name} ${dollars(u)}`);
    if (parts.length) text += ` (${parts.join(", ")})`;
    return text;
  }

  function tick() {
    if (!current || !current.createdAt) return;
    $("job-elapsed").textContent = `${((Date.now() - current.createdAt) / 1000).toFixed(0)} s`;
  }

  async function openJob(jobId, request) {
    if (current && current.id === jobId) return;
    if (current) {
      current.controller.abort();
      clearInterval(current.timer);
    }
    const controller = new AbortController();
    current = {
      id: jobId, controller, createdAt: null, sources: new Map(), seen: new Map(), timer: null,
      depth: request && request.depth ? request.depth : null, tree: null, level: 1,
      retrievedLevel: 0, ended: false, bar: 0,
    };
    const job = current;
    $("job").hidden = false;
    $("job").dataset.outcome = "";
    $("report").hidden = true;
    $("report").dataset.draft = "false";
    $("report-draft").hidden = true;
    $("report-body").replaceChildren();
    $("event-log").replaceChildren();
    renderTree(); // none until this job's request or view says it is a deep one
    $("job-elapsed").textContent = "";
    $("cancel").hidden = false;
    setBar(0);
    setStatus("Connecting…");
    if (window.location.hash !== `#job=${jobId}`) history.replaceState(null, "", `#job=${jobId}`);
    $("job-heading").focus();
    if (request) {
      $("job-question").textContent = request.question;
      renderSources(slotsOf(request.sources));
      // A deep job's tree starts as its own question; the view fills it in level by level.
      if (job.depth > 1) job.tree = [{ node: "1", parent: null, question: request.question, level: 1, sources: [] }];
      renderTree();
    } else {
      try {
        const view = await api(`/jobs/${jobId}`, { signal: controller.signal });
        if (job !== current) return;
        $("job-question").textContent = view.question;
        job.createdAt = Date.parse(view.created_at);
        job.tree = view.tree || null;
        renderTree();
        renderSources(
          view.sources.map((s) => ({
            index: s.index, url: s.url, title: s.title, label: s.url,
            state: s.state === "ok" ? "fetched" : s.state, reason: s.reason,
          })),
        );
      } catch (err) {
        if (controller.signal.aborted) return;
        setStatus(err instanceof ApiError && err.status === 404 ? "There is no such job for you." : `The job could not be loaded: ${err.message}`);
        $("cancel").hidden = true;
        return;
      }
    }
    job.timer = setInterval(tick, 500);
    try {
      await followEvents(jobId, (event) => { if (job === current) onEvent(event); }, controller.signal);
    } catch (err) {
      if (job === current) {
        setStatus(`Progress is unavailable: ${err.message}`);
        clearInterval(job.timer);
      }
    }
  }

  // ------------------------------------------------------------------ forms and lists

  function showFormError(message) {
    const box = $("form-error");
    box.textContent = message;
    box.hidden = !message;
  }

  async function submit(event) {
    event.preventDefault();
    showFormError("");
    const question = $("question").value.trim();
    const sources = $("sources").value.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
    const search = $("search").value.trim();
    if (question.length < 3) {
      showFormError("Write a question of at least a few words.");
      $("question").focus();
      return;
    }
    const bad = sources.find((s) => !/^(https?:\/\/\S+|s3:\/\/\S+)$/i.test(s));
    if (bad) {
      showFormError(`“${bad}” is not a web address (it should start with http:// or https://).`);
      $("sources").focus();
      return;
    }
    const specs = [...sources];
    if (search) specs.push({ search, limit: Number($("search-limit").value) });
    if (!specs.length) {
      showFormError("Give at least one source, or something to search the web for.");
      $("sources").focus();
      return;
    }
    const button = $("submit");
    button.disabled = true;
    button.textContent = "Starting…";
    try {
      const request = { question, sources: specs };
      const most = $("max-sources").value;
      if (most) request.max_sources = Number(most);
      const depth = Number($("depth").value);
      if (depth > 1) {
        request.depth = depth;
        request.breadth = Number($("breadth").value);
        const seconds = $("max-seconds").value;
        if (seconds) request.max_seconds = Number(seconds);
        const cost = $("max-cost").value;
        if (cost) request.max_cost_usd = Number(cost);
      }
      const accepted = await api("/jobs", { method: "POST", body: request });
      openJob(accepted.job_id, request);
      loadJobs();
    } catch (err) {
      showFormError(err.status === 401 ? `${err.message} Set your API key above.` : err.message);
      if (err.status === 401) {
        $("key-panel").open = true;
        $("api-key").focus();
      }
    } finally {
      button.disabled = false;
      button.textContent = "Research";
    }
  }

  async function loadJobs() {
    const status = $("jobs-status");
    try {
      const page = await api("/jobs?limit=20");
      const list = $("jobs-list");
      list.replaceChildren();
      for (const job of page.jobs) {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = `#job=${job.job_id}`;
        a.textContent = job.question;
        const badge = document.createElement("span");
        badge.className = `badge ${job.state}`;
        badge.textContent = job.state;
        const when = document.createElement("time");
        when.dateTime = job.created_at;
        when.textContent = new Date(job.created_at).toLocaleString();
        li.append(a, " ", badge, " ", when);
        list.append(li);
      }
      status.textContent = page.jobs.length ? "" : "No jobs yet.";
    } catch (err) {
      status.textContent = `Your jobs could not be listed: ${err.message}`;
    }
  }

  function showKeyState() {
    const key = apiKey();
    $("key-summary").textContent = key ? "API key: set" : "API key";
    $("key-status").textContent = key ? "A key is saved in this browser." : "No key saved: calls are anonymous.";
  }

  function openFromHash() {
    const m = /^#job=([0-9a-f]{32})$/.exec(window.location.hash);
    if (m) openJob(m[1]);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("ask-form").addEventListener("submit", submit);
    const followUps = () => {
      const none = Number($("depth").value) <= 1;
      for (const id of ["breadth", "max-seconds", "max-cost"]) $(id).disabled = none;
    };
    $("depth").addEventListener("change", followUps);
    followUps(); // a reloaded page may keep the form's earlier choice
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      try {
        if (key) localStorage.setItem(KEY_STORAGE, key);
        else localStorage.removeItem(KEY_STORAGE);
      } catch {
        // storage refused: the key lasts until the page closes
      }
      $("api-key").value = "";
      showKeyState();
      loadJobs();
    });
    $("key-forget").addEventListener("click", () => {
      try { localStorage.removeItem(KEY_STORAGE); } catch { /* nothing stored */ }
      showKeyState();
      loadJobs();
    });
    $("cancel").addEventListener("click", async () => {
      if (!current) return;
      $("cancel").disabled = true;
      try {
        await api(`/jobs/${current.id}/cancel`, { method: "POST" });
      } catch (err) {
        setStatus(`The job could not be cancelled: ${err.message}`);
      } finally {
        $("cancel").disabled = false;
      }
    });
    $("jobs-refresh").addEventListener("click", loadJobs);
    for (const button of document.querySelectorAll("#report button[data-format]")) {
      button.addEventListener("click", () => downloadReport(button.dataset.format));
    }
    window.addEventListener("hashchange", openFromHash);
    showKeyState();
    loadJobs();
    openFromHash();
  });

  // For tests and the curious: the renderer on its own.
  window.brief = { renderMarkdown, usageText };
})();
