"""Markup that would run script if a page ever rendered model output as HTML.

Every payload that could run sets ``window.__xss``, changes ``document.title`` to ``pwned``, or
opens a dialog, so the browser test can tell whether any of them ran.
"""

from __future__ import annotations

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'
IMG_ALERT = "<img src=x onerror=alert(1)>"
SVG = '<svg onload="window.__xss=1">'

PAYLOADS = [
    SCRIPT,
    IMG,
    IMG_ALERT,
    SVG,
    "<svg><script>document.title='pwned'</script></svg>",
    '"><script>window.__xss=1</script>',
    "'><img src=x onerror=window.__xss=1>",
    "</script><script>window.__xss=1</script>",
    "</textarea></pre><script>window.__xss=1</script>",
    "javascript:window.__xss=1",
    '<a href="javascript:window.__xss=1">click me</a>',
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    '<details open ontoggle="window.__xss=1">x</details>',
    '<input autofocus onfocus="window.__xss=1">',
    "<body onload=window.__xss=1>",
    '<math><mi xlink:href="javascript:window.__xss=1">x</mi></math>',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=1">',
    "<style>*{display:none}</style>",
    "{{7*7}} {% print(7*7) %} ${7*7}",
    "＜script＞window.__xss=1＜/script＞ \u202egnp.exe <scr\u200bipt>window.__xss=1</scr\u200bipt>",
    "<template><img src=x onerror=window.__xss=1></template>",
    "]]><!--<script>window.__xss=1</script>-->",
]

#: A name for a project: it appears in URLs, so nothing a path would split on.
PROJECT = "<img src=x onerror=window.__xss=1>"
