// GraphiQL for aidgraph: sends the console's session cookie with its CSRF header (double submit), or whatever
// Authorization header the person types into the headers editor. Served by the server itself (no CDN).
(function () {
  function cookie(name) {
    const m = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return m ? decodeURIComponent(m.slice(name.length + 1)) : null;
  }
  const url = window.location.origin + "/graphql";
  function fetcher(params, opts) {
    const headers = Object.assign({ "Content-Type": "application/json", Accept: "application/json" },
      (opts && opts.headers) || {});
    const csrf = cookie("aidgraph_csrf");
    if (csrf) headers["X-CSRF-Token"] = csrf;
    return fetch(url, { method: "POST", headers, body: JSON.stringify(params), credentials: "same-origin" })
      .then((r) => r.json());
  }
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {
    fetcher,
    defaultEditorToolsVisibility: true,
    isHeadersEditorEnabled: true,
    defaultQuery: "# 登录控制台后可直接使用 / log in at /console first, or add an Authorization header below\n{ me { username roles scopes { code name level } } }\n",
  }));
})();
