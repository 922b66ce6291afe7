"""Reference ε from dp_accounting's PLD accountant (pessimistic estimate, connect the dots).

Used by tests/privacy/accountant_test.cpp. Each argument is one case,
"sample_rate,noise_multiplier,steps,delta,value_discretization_interval"; the output has one
line per case: the ε of `steps` Poisson-sampled Gaussian steps at δ under add/remove-one
adjacency, the larger of the two directions (dp_accounting's default). Exits with 77 and a
message when dp_accounting cannot be imported, so the test is skipped rather than failed.
"""
import sys


def main(cases):
    try:
        from dp_accounting import dp_event
        from dp_accounting.pld import pld_privacy_accountant
    except ImportError as error:
        print(f"dp_accounting is not importable: {error}")
        return 77
    for case in cases:
        q, sigma, steps, delta, interval = case.split(",")
        accountant = pld_privacy_accountant.PLDAccountant(
            value_discretization_interval=float(interval))
        event = dp_event.PoissonSampledDpEvent(float(q), dp_event.GaussianDpEvent(float(sigma)))
        accountant.compose(event, int(steps))
        print(repr(accountant.get_epsilon(float(delta))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
