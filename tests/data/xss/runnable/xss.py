"""Fixture for the XSS tests (never run). </code><script>window.__xss=1</script>
```
<img src=x onerror=alert(1)>
"""
GATE = ("accuracy", ">=", 0.5)
