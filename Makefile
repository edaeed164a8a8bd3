# The two commands (see README.md). Each sets up the environment first.
.PHONY: demo test

demo:
	./scripts/with-env.sh python -m mtlkit demo

test:
	./scripts/with-env.sh python -m pytest
