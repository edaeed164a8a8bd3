# The two commands (see README.md). Each sets up the environment first; the tests also
# need a Chromium for the browser tests, which ensure-chromium.sh installs on CI runners.
# `make book` executes every notebook (quick parameters) and renders it to HTML in build/book/;
# `make launch-links` points every Colab/Binder link and install cell at [tool.mtlkit] in
# pyproject.toml (for a fork).
.PHONY: demo test book launch-links

demo:
	./scripts/with-env.sh python -m mtlkit demo

test:
	./scripts/ensure-chromium.sh
	./scripts/with-env.sh python -m pytest

book:
	./scripts/with-env.sh python -m mtlkit.book --out build/book

launch-links:
	./scripts/with-env.sh python scripts/launch_links.py
