// The dashboard's only script: live updates, unfolding threads, @-autocomplete, the copy button.
// Everything it inserts is either plain text (textContent) or HTML this site rendered and sanitized
// on the server; it never builds HTML from data itself, and it talks to this origin only.
"use strict";

(function () {
  function fetchText(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    });
  }

  function nodesOf(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    return Array.prototype.map.call(doc.body.children, function (n) { return document.importNode(n, true); });
  }

  // -- live: ask what changed since the page was drawn, fetch only the new messages --------------
  var main = document.getElementById("main");
  var status = main && main.querySelector(".live");
  var seq = main && main.dataset.seq ? parseInt(main.dataset.seq, 10) : null;
  var seen = {};

  function describe(kinds) {
    var names = { message: "messages", result: "results", verdict: "verdicts", job: "job events", agent: "registrations" };
    return Object.keys(names).filter(function (k) { return seen[k]; }).map(function (k) {
      return seen[k] + " " + names[k];
    }).join(", ");
  }

  function addMessages(container, changes) {
    var after = container.dataset.after;
    var channel = container.dataset.channel || "";
    if (!after || !changes.kinds.message || (channel && !changes.channels[channel])) { return; }
    var url = "/fragments/messages?after=" + encodeURIComponent(after) + (channel ? "&channel=" + encodeURIComponent(channel) : "");
    fetchText(url).then(function (html) {
      nodesOf(html).forEach(function (node) {
        node.classList.add("fresh");
        container.insertBefore(node, container.firstChild);
        if (node.dataset.id) { container.dataset.after = node.dataset.id; }
      });
    }).catch(function () {});
  }

  function addReplies(container, changes) {
    if (!changes.kinds.message) { return; }
    var url = container.dataset.liveThread + (container.dataset.after ? "?after=" + encodeURIComponent(container.dataset.after) : "");
    fetchText(url).then(function (html) {
      nodesOf(html).forEach(function (node) {
        if (node.dataset.id && document.getElementById("m-" + node.dataset.id)) { return; }
        node.classList.add("fresh");
        container.appendChild(node);
        if (node.dataset.id) { container.dataset.after = node.dataset.id; }
      });
    }).catch(function () {});
  }

  function poll() {
    if (document.hidden || seq === null) { return; }
    fetch("/live?since=" + seq, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (changes) {
      if (!changes || changes.seq === seq) { return; }
      Object.keys(changes.kinds).forEach(function (k) { seen[k] = (seen[k] || 0) + changes.kinds[k]; });
      main.querySelectorAll("[data-live-messages]").forEach(function (c) { addMessages(c, changes); });
      main.querySelectorAll("[data-live-thread]").forEach(function (c) { addReplies(c, changes); });
      seq = changes.seq;
      var text = changes.truncated ? "Much has changed since this page was drawn." : "Since this page was drawn: " + describe() + ".";
      status.textContent = text + " ";
      var reload = document.createElement("a");
      reload.href = window.location.pathname + window.location.search;
      reload.textContent = "Reload";
      status.appendChild(reload);
      status.hidden = false;
    }).catch(function () {});
  }

  if (seq !== null) {
    var every = Math.max(2, parseInt(main.dataset.poll || "10", 10)) * 1000;
    window.setInterval(poll, every);
  }

  // -- threads: unfold in place --------------------------------------------------------------
  document.querySelectorAll("details[data-fragment]").forEach(function (details) {
    details.addEventListener("toggle", function () {
      if (!details.open || details.dataset.loaded) { return; }
      details.dataset.loaded = "1";
      var target = details.querySelector(".replies");
      fetchText(details.dataset.fragment).then(function (html) {
        target.replaceChildren.apply(target, nodesOf(html));
      }).catch(function () { delete details.dataset.loaded; });
    });
  });

  // -- @-autocomplete ------------------------------------------------------------------------
  document.querySelectorAll("textarea[data-autocomplete]").forEach(function (area) {
    var list = document.getElementById(area.getAttribute("aria-controls"));
    var items = [];
    var active = -1;
    var timer = null;

    function close() {
      list.hidden = true;
      list.replaceChildren();
      area.setAttribute("aria-expanded", "false");
      area.removeAttribute("aria-activedescendant");
      items = [];
      active = -1;
    }

    function prefix() {
      var before = area.value.slice(0, area.selectionStart);
      var m = /(^|[^\w@\/.-])@([a-z0-9-]{0,40})$/.exec(before);
      return m ? m[2] : null;
    }

    function choose(handle) {
      var start = area.selectionStart;
      var before = area.value.slice(0, start).replace(/@([a-z0-9-]{0,40})$/, "@" + handle + " ");
      area.value = before + area.value.slice(start);
      area.selectionStart = area.selectionEnd = before.length;
      close();
      area.focus();
    }

    function highlight(i) {
      items.forEach(function (li, j) { li.setAttribute("aria-selected", j === i ? "true" : "false"); });
      active = i;
      if (i >= 0) { area.setAttribute("aria-activedescendant", items[i].id); }
    }

    function show(handles) {
      list.replaceChildren();
      items = handles.map(function (h, i) {
        var li = document.createElement("li");
        li.id = list.id + "-" + i;
        li.setAttribute("role", "option");
        li.textContent = "@" + h;
        li.dataset.handle = h;
        li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(h); });
        list.appendChild(li);
        return li;
      });
      if (!items.length) { close(); return; }
      list.hidden = false;
      area.setAttribute("aria-expanded", "true");
      highlight(0);
    }

    area.addEventListener("input", function () {
      var p = prefix();
      window.clearTimeout(timer);
      if (p === null) { close(); return; }
      timer = window.setTimeout(function () {
        fetch(area.dataset.autocomplete + "?q=" + encodeURIComponent(p), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : { items: [] }; })
          .then(function (data) { if (prefix() === p) { show(data.items || []); } })
          .catch(close);
      }, 120);
    });

    area.addEventListener("keydown", function (e) {
      if (list.hidden || !items.length) { return; }
      if (e.key === "ArrowDown") { e.preventDefault(); highlight((active + 1) % items.length); }
      else if (e.key === "ArrowUp") { e.preventDefault(); highlight((active - 1 + items.length) % items.length); }
      else if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); choose(items[active].dataset.handle); }
      else if (e.key === "Escape") { e.preventDefault(); close(); }
    });
    area.addEventListener("blur", function () { window.setTimeout(close, 150); });
  });

  // -- copy buttons --------------------------------------------------------------------------
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copy);
      var note = button.parentNode.querySelector(".copied");
      function done(ok) { if (note) { note.textContent = ok ? "Copied." : "Select the text and copy it."; } }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.value).then(function () { done(true); }, function () { done(false); });
      } else {
        source.select();
        done(document.execCommand("copy"));
      }
    });
  });
})();
