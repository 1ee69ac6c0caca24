"""The chaos and load suite (`make chaos`): resume under connection resets, kill -9 under write
load, how many sockets one process holds, and a soak of mixed traffic. Each scenario is a
function with its sizes as arguments; `make chaos` runs the full sizes and writes
var/bench/chaos-*.json, tests/chaos runs CI-sized ones and asserts on the same reports."""
