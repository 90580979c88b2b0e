# Shortcuts for the usual tasks; npm and the vxtun CLI do the work. `lab`, `lab-down` and
# `bench` need root (network namespaces) and a build.
ADDON := build/Release/vxtun_native.node
VXTUN := node bin/vxtun.js

.PHONY: build test test-unit lab lab-down bench clean

build: $(ADDON)
	npm run build

# The C++ addon, only when it is missing (npm install builds it too).
$(ADDON):
	npx node-gyp rebuild

test: build
	npm test

test-unit: $(ADDON)
	npm run test:unit

# The default lab: 2 nodes with 2 pods each, then the all-pairs ping matrix.
lab: build
	$(VXTUN) lab up --nodes 2 --pods 2
	$(VXTUN) lab ping

lab-down:
	$(VXTUN) lab down

bench: build
	$(VXTUN) bench --out bench/results

clean:
	rm -rf dist build .tap
