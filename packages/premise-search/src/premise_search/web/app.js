// The search page: POST /search, render results with textContent only (no HTML from the server is trusted).
"use strict";

(function () {
  const form = document.getElementById("search-form");
  const status = document.getElementById("status");
  const list = document.getElementById("results");
  const corpus = document.getElementById("corpus");

  // name the corpus being searched (library, commit, size) from /health
  fetch("/health").then((r) => r.json()).then((h) => {
    const c = h.corpus || {};
    const size = (h.num_docs || 0).toLocaleString("en");
    const commit = c.commit ? ` at commit ${String(c.commit).slice(0, 8)}` : "";
    corpus.textContent = `Searching ${c.label || c.name || "a custom corpus"}${commit}: ${size} declarations.`;
  }).catch(() => { corpus.textContent = ""; });

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function copyText(text, button) {
    const done = () => { button.textContent = "copied"; setTimeout(() => { button.textContent = "copy name"; }, 1200); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
    } else {
      fallbackCopy(text, done);
    }
  }

  function fallbackCopy(text, done) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* the user can still select the name */ }
    document.body.removeChild(area);
    done();
  }

  function render(items) {
    list.replaceChildren();
    for (const item of items) {
      const r = item.result;
      const name = r.name.join(".");
      const li = el("li", "result");
      li.dataset.name = name;
      const head = el("div");
      head.appendChild(el("span", "name", name));
      head.appendChild(el("span", "meta kind", r.kind));
      head.appendChild(el("span", "meta module", r.module_name.join(".")));
      const button = el("button", "copy", "copy name");
      button.type = "button";
      button.addEventListener("click", () => copyText(name, button));
      head.appendChild(button);
      li.appendChild(head);
      li.appendChild(el("pre", "signature", r.signature || r.type || ""));
      const informal = [r.informal_name, r.informal_description || r.docstring].filter(Boolean).join(": ");
      if (informal) li.appendChild(el("div", "informal", informal));
      list.appendChild(li);
    }
  }

  async function search(event) {
    event.preventDefault();
    const query = document.getElementById("q").value.trim();
    if (!query) return;
    const body = {
      query: [query],
      num_results: Math.max(1, Math.min(150, parseInt(document.getElementById("num").value, 10) || 10)),
      rerank: document.getElementById("rerank").checked,
      mode: document.getElementById("mode").value,
    };
    status.textContent = "searching…";
    const start = performance.now();
    try {
      const response = await fetch("/search", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const payload = await response.json();
      if (!response.ok) {
        list.replaceChildren();
        status.textContent = "error " + response.status + ": " + (payload.detail || "request refused");
        return;
      }
      render(payload[0]);
      const ms = Math.round(performance.now() - start);
      status.textContent = payload[0].length + " results in " + ms + " ms";
      status.dataset.state = "done";
    } catch (e) {
      status.textContent = "error: " + e;
    }
  }

  form.addEventListener("submit", search);
})();
