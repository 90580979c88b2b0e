// Tests use the same traffic tools as the benchmarks.
export { csumErrors, type IperfResult, iperf, iperfTcp, pingRtt } from "../../src/bench/traffic.js";
