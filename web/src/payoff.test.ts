import { describe, expect, it } from "vitest";
import { analyze, merge, payoff, unitOf } from "./payoff";

// The figures below are the server's for the same legs (internal/evaluate's
// tests); the browser tests compare against the live server too.
describe("payoff", () => {
  it("an iron condor: loss 3, gain 2, break-evens 93 and 107", () => {
    const legs = merge([
      { side: "long", right: "put", strike: 90, quantity: 1, premium: 1 },
      { side: "short", right: "put", strike: 95, quantity: 1, premium: 2 },
      { side: "short", right: "call", strike: 105, quantity: 1, premium: 2 },
      { side: "long", right: "call", strike: 110, quantity: 1, premium: 1 },
    ]);
    expect(analyze(legs, unitOf(legs))).toEqual({ maxLoss: 3, maxGain: 2, breakevens: [93, 107] });
  });
  it("a long call: unbounded gain, loss the premium", () => {
    const legs = [{ side: "long", right: "call", strike: 100, quantity: 3, premium: 3 }];
    expect(unitOf(legs)).toBe(3);
    expect(analyze(legs, 3)).toEqual({ maxLoss: 3, maxGain: null, breakevens: [103] });
    expect(payoff(legs, 3, 110)).toBe(7);
  });
  it("a butterfly 1:2:1 is one unit; equal legs merge", () => {
    const legs = merge([
      { side: "long", right: "call", strike: 90, quantity: 1, premium: 12 },
      { side: "short", right: "call", strike: 100, quantity: 1, premium: 5 },
      { side: "short", right: "call", strike: 100, quantity: 1, premium: 5 },
      { side: "long", right: "call", strike: 110, quantity: 1, premium: 1 },
    ]);
    expect(legs.length).toBe(3);
    expect(unitOf(legs)).toBe(1);
    expect(analyze(legs, 1)).toEqual({ maxLoss: 3, maxGain: 7, breakevens: [93, 107] });
  });
});
