"""`python -m harness site`: every run folder as a static site people can browse.

    DIR/index.html                 every run (kind, profile, machine, UTC, commit, libraries,
                                   cells that ran, problems) and every series
    DIR/runs/<run>/index.html      one run: facts, interactive plots, cells, report.md in HTML
    DIR/series/<key>.html          one series across runs, by machine, compare's verdicts
    DIR/assets/                    plotly.min.js (once), site.css, site.js (sortable tables)

runs.py reads the folders (problems said, never raised), history.py joins one series across
runs, charts.py draws with plotly, html.py is the page shell; index.py, run_page.py and
series_page.py are the three kinds of page; command.py builds and publishes the site;
browser.py finds and starts headless Chromium (the tests' and the screenshots').
"""
