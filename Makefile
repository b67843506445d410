# Shortcuts for the scripts in .ci/ (which work without make too).
.PHONY: demo test fast ci
demo:  ## start the whole system with a simulated IOC and demo data
	bash .ci/demo
test:  ## run the test suite
	bash .ci/test
fast:  ## the fast subset: no IOC, worker or browser, in parallel
	bash .ci/fast
ci:
	bash .ci/run
