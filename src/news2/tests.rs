//! The chart as data: every edge of every row of ../shared/NEWS2.md, both sides.

use super::*;
use proptest::prelude::*;

fn ex(v: f64) -> Exact {
    Exact::from_f64(v).unwrap()
}

fn n(v: f64) -> Input<Exact> {
    Input::Present(ex(v))
}

/// A complete set that scores 0 everywhere: RR 16, SpO2 98, air, SBP 120, HR 70, A, 37.0 °C.
fn normal() -> Parameters {
    Parameters {
        respiration_rate: n(16.0),
        spo2: n(98.0),
        air_or_oxygen: Input::Present(AirOrOxygen::Air),
        systolic_bp: n(120.0),
        pulse: n(70.0),
        consciousness: Input::Present(Acvpu::A),
        temperature: n(37.0),
    }
}

#[test]
fn respiration_rate_row() {
    let chart = [
        (0, 3),
        (8, 3),
        (9, 1),
        (11, 1),
        (12, 0),
        (20, 0),
        (21, 2),
        (24, 2),
        (25, 3),
        (60, 3),
    ];
    for (rr, expected) in chart {
        assert_eq!(respiration_rate_subscore(rr), expected, "RR {rr}");
    }
}

#[test]
fn spo2_scale1_row() {
    let chart = [
        (0, 3),
        (91, 3),
        (92, 2),
        (93, 2),
        (94, 1),
        (95, 1),
        (96, 0),
        (100, 0),
    ];
    for (spo2, expected) in chart {
        assert_eq!(spo2_scale1_subscore(spo2), expected, "SpO2 {spo2}");
    }
}

#[test]
fn spo2_scale2_row_on_air_and_on_oxygen() {
    use AirOrOxygen::{Air, Oxygen};
    // (SpO2, on air, on oxygen, unknown)
    let chart = [
        (0, 3, 3, Some(3)),
        (83, 3, 3, Some(3)),
        (84, 2, 2, Some(2)),
        (85, 2, 2, Some(2)),
        (86, 1, 1, Some(1)),
        (87, 1, 1, Some(1)),
        (88, 0, 0, Some(0)),
        (92, 0, 0, Some(0)),
        (93, 0, 1, None),
        (94, 0, 1, None),
        (95, 0, 2, None),
        (96, 0, 2, None),
        (97, 0, 3, None),
        (100, 0, 3, None),
    ];
    for (spo2, air, oxygen, unknown) in chart {
        assert_eq!(
            spo2_scale2_subscore(spo2, Some(Air)),
            Some(air),
            "SpO2 {spo2} on air"
        );
        assert_eq!(
            spo2_scale2_subscore(spo2, Some(Oxygen)),
            Some(oxygen),
            "SpO2 {spo2} on O2"
        );
        assert_eq!(
            spo2_scale2_subscore(spo2, None),
            unknown,
            "SpO2 {spo2} unknown"
        );
    }
}

#[test]
fn air_or_oxygen_row() {
    assert_eq!(air_or_oxygen_subscore(AirOrOxygen::Air), 0);
    assert_eq!(air_or_oxygen_subscore(AirOrOxygen::Oxygen), 2);
}

#[test]
fn systolic_bp_row() {
    let chart = [
        (10, 3),
        (90, 3),
        (91, 2),
        (100, 2),
        (101, 1),
        (110, 1),
        (111, 0),
        (219, 0),
        (220, 3),
        (300, 3),
    ];
    for (sbp, expected) in chart {
        assert_eq!(systolic_bp_subscore(sbp), expected, "SBP {sbp}");
    }
}

#[test]
fn pulse_row() {
    let chart = [
        (0, 3),
        (40, 3),
        (41, 1),
        (50, 1),
        (51, 0),
        (90, 0),
        (91, 1),
        (110, 1),
        (111, 2),
        (130, 2),
        (131, 3),
        (300, 3),
    ];
    for (hr, expected) in chart {
        assert_eq!(pulse_subscore(hr), expected, "pulse {hr}");
    }
}

#[test]
fn consciousness_row() {
    let chart = [
        (Acvpu::A, 0),
        (Acvpu::C, 3),
        (Acvpu::V, 3),
        (Acvpu::P, 3),
        (Acvpu::U, 3),
    ];
    for (level, expected) in chart {
        assert_eq!(consciousness_subscore(level), expected, "ACVPU {level}");
    }
}

#[test]
fn temperature_row() {
    let chart = [
        (100, 3),
        (350, 3),
        (351, 1),
        (360, 1),
        (361, 0),
        (380, 0),
        (381, 1),
        (390, 1),
        (391, 2),
        (470, 2),
    ];
    for (tenths, expected) in chart {
        assert_eq!(
            temperature_subscore(tenths),
            expected,
            "temperature {tenths} tenths"
        );
    }
}

/// Scores `normal()` with one parameter replaced, and returns that parameter's sub-score.
fn subscore_with(parameter: Parameter, value: f64) -> Option<u8> {
    let mut set = normal();
    match parameter {
        Parameter::RespirationRate => set.respiration_rate = n(value),
        Parameter::Spo2 => set.spo2 = n(value),
        Parameter::SystolicBp => set.systolic_bp = n(value),
        Parameter::Pulse => set.pulse = n(value),
        Parameter::Temperature => set.temperature = n(value),
        Parameter::AirOrOxygen | Parameter::Consciousness => unreachable!("not numeric"),
    }
    score(&set, Scale::One).subscore(parameter)
}

#[test]
fn values_are_quantised_half_up_before_banding() {
    use Parameter::*;
    let cases = [
        (RespirationRate, 8.5, 1),  // → 9
        (RespirationRate, 8.49, 3), // → 8
        (RespirationRate, 8.4, 3),  // a window mean of 8.4 → 8
        (RespirationRate, 11.5, 0), // → 12
        (RespirationRate, 20.5, 2), // → 21
        (RespirationRate, 24.5, 3), // → 25
        (Spo2, 91.5, 2),            // → 92
        (Spo2, 91.49, 3),
        (Spo2, 95.5, 0), // → 96
        (SystolicBp, 90.5, 2),
        (SystolicBp, 90.4, 3),
        (SystolicBp, 110.5, 0),
        (SystolicBp, 219.5, 3),
        (SystolicBp, 219.4, 0),
        (Pulse, 40.5, 1),
        (Pulse, 40.49, 3),
        (Pulse, 90.5, 1),
        (Pulse, 130.5, 3),
        (Temperature, 35.05, 1), // → 35.1: binary floating point would make it 35.0 and 3
        (Temperature, 35.04, 3),
        (Temperature, 36.05, 0), // → 36.1
        (Temperature, 36.04, 1),
        (Temperature, 38.05, 1), // → 38.1
        (Temperature, 38.04, 0),
        (Temperature, 39.05, 2), // → 39.1
        (Temperature, 39.04, 1),
    ];
    for (parameter, value, expected) in cases {
        assert_eq!(
            subscore_with(parameter, value),
            Some(expected),
            "{parameter} {value}"
        );
    }
}

#[test]
fn a_normal_set_is_low_with_routine_monitoring() {
    let s = score(&normal(), Scale::One);
    assert_eq!(s.status, Status::Complete);
    assert_eq!((s.total, s.upper_bound), (0, 0));
    assert_eq!(s.band, Some(Band::Low));
    assert!(!s.single_parameter_3);
    assert_eq!(s.monitoring(), "minimum 12-hourly");
    assert!(s.response().starts_with("routine"));
    assert!(s.problems.is_empty());
}

/// Builds complete sets with given sub-scores by picking chart values.
fn set_scoring(rr: u8, spo2: u8, oxygen: bool, sbp: u8, hr: u8, acvpu: u8, temp: u8) -> Parameters {
    let rr_v = [16.0, 10.0, 22.0, 8.0][rr as usize];
    let spo2_v = [98.0, 95.0, 93.0, 91.0][spo2 as usize];
    let sbp_v = [120.0, 105.0, 95.0, 90.0][sbp as usize];
    let hr_v = [70.0, 100.0, 120.0, 140.0][hr as usize];
    let temp_v = [37.0, 38.5, 39.5, 35.0][temp as usize];
    Parameters {
        respiration_rate: n(rr_v),
        spo2: n(spo2_v),
        air_or_oxygen: Input::Present(if oxygen {
            AirOrOxygen::Oxygen
        } else {
            AirOrOxygen::Air
        }),
        systolic_bp: n(sbp_v),
        pulse: n(hr_v),
        consciousness: Input::Present(if acvpu == 3 { Acvpu::V } else { Acvpu::A }),
        temperature: n(temp_v),
    }
}

#[test]
fn every_band_edge_with_and_without_a_single_3() {
    // (set, total, single 3, band, monitoring)
    let cases = [
        (
            set_scoring(0, 0, false, 0, 0, 0, 0),
            0,
            false,
            Band::Low,
            "minimum 12-hourly",
        ),
        (
            set_scoring(1, 0, false, 0, 0, 0, 0),
            1,
            false,
            Band::Low,
            "minimum 4–6-hourly",
        ),
        (
            set_scoring(1, 1, false, 1, 1, 0, 0),
            4,
            false,
            Band::Low,
            "minimum 4–6-hourly",
        ),
        (
            set_scoring(3, 0, false, 0, 0, 0, 0),
            3,
            true,
            Band::LowMedium,
            "minimum 1-hourly",
        ),
        (
            set_scoring(0, 0, false, 0, 0, 3, 0),
            3,
            true,
            Band::LowMedium,
            "minimum 1-hourly",
        ),
        (
            set_scoring(3, 1, false, 0, 0, 0, 0),
            4,
            true,
            Band::LowMedium,
            "minimum 1-hourly",
        ),
        (
            set_scoring(1, 1, false, 1, 2, 0, 0),
            5,
            false,
            Band::Medium,
            "minimum 1-hourly",
        ),
        (
            set_scoring(3, 1, false, 1, 0, 0, 0),
            5,
            true,
            Band::Medium,
            "minimum 1-hourly",
        ),
        (
            set_scoring(0, 0, true, 1, 1, 0, 2),
            6,
            false,
            Band::Medium,
            "minimum 1-hourly",
        ),
        (
            set_scoring(0, 0, false, 0, 0, 3, 3),
            6,
            true,
            Band::Medium,
            "minimum 1-hourly",
        ),
        (
            set_scoring(2, 1, false, 1, 2, 0, 1),
            7,
            false,
            Band::High,
            "continuous monitoring of vital signs",
        ),
        (
            set_scoring(3, 0, false, 0, 0, 3, 1),
            7,
            true,
            Band::High,
            "continuous monitoring of vital signs",
        ),
        (
            set_scoring(3, 3, true, 3, 3, 3, 3),
            20,
            true,
            Band::High,
            "continuous monitoring of vital signs",
        ),
    ];
    for (set, total, single, band, monitoring) in cases {
        let s = score(&set, Scale::One);
        assert_eq!(s.status, Status::Complete, "{set:?}");
        assert_eq!(s.total, total, "{set:?}");
        assert_eq!(s.upper_bound, total, "{set:?}");
        assert_eq!(s.single_parameter_3, single, "{set:?}");
        assert_eq!(s.band, Some(band), "{set:?}");
        assert_eq!(s.monitoring(), monitoring, "{set:?}");
    }
}

#[test]
fn responses_follow_the_band() {
    let response = |set| score(&set, Scale::One).response();
    assert!(response(set_scoring(1, 0, false, 0, 0, 0, 0)).starts_with("ward-based response"));
    assert!(
        response(set_scoring(3, 0, false, 0, 0, 0, 0)).starts_with("urgent ward-based response")
    );
    assert!(response(set_scoring(1, 1, false, 1, 2, 0, 0)).starts_with("urgent response"));
    assert!(response(set_scoring(2, 1, false, 1, 2, 0, 1)).starts_with("emergency response"));
}

#[test]
fn each_acvpu_level_on_a_full_set() {
    for (level, expected_band) in [
        (Acvpu::A, Band::Low),
        (Acvpu::C, Band::LowMedium),
        (Acvpu::V, Band::LowMedium),
        (Acvpu::P, Band::LowMedium),
        (Acvpu::U, Band::LowMedium),
    ] {
        let set = Parameters {
            consciousness: Input::Present(level),
            ..normal()
        };
        let s = score(&set, Scale::One);
        assert_eq!(s.band, Some(expected_band), "{level}");
    }
}

#[test]
fn scale_2_only_changes_spo2_and_needs_air_or_oxygen_at_93_and_above() {
    // SpO2 90 on air: 3 on scale 1, 0 on scale 2.
    let set = Parameters {
        spo2: n(90.0),
        ..normal()
    };
    assert_eq!(score(&set, Scale::One).subscore(Parameter::Spo2), Some(3));
    assert_eq!(score(&set, Scale::Two).subscore(Parameter::Spo2), Some(0));

    // SpO2 97 on oxygen: 0 on scale 1 (+2 for oxygen), 3 on scale 2 (+2).
    let set = Parameters {
        spo2: n(97.0),
        air_or_oxygen: Input::Present(AirOrOxygen::Oxygen),
        ..normal()
    };
    assert_eq!(score(&set, Scale::One).total, 2);
    let s2 = score(&set, Scale::Two);
    assert_eq!((s2.total, s2.band), (5, Some(Band::Medium)));

    // Oxygen unknown, SpO2 95 on scale 2: unscorable, upper bound 2 (on oxygen) + 2 (oxygen).
    let set = Parameters {
        spo2: n(95.0),
        air_or_oxygen: Input::Missing,
        ..normal()
    };
    let s = score(&set, Scale::Two);
    assert_eq!(s.status, Status::Incomplete);
    assert_eq!(s.subscore(Parameter::Spo2), None);
    assert_eq!((s.total, s.upper_bound), (0, 4));
    assert_eq!(s.band, None);
    assert!(
        s.problems
            .contains(&Problem::Spo2NeedsAirOrOxygen { percent: 95 })
    );
    assert!(
        s.problems
            .contains(&Problem::Missing(Parameter::AirOrOxygen))
    );

    // Oxygen unknown, SpO2 below 93 on scale 2 is still scored.
    let set = Parameters {
        spo2: n(86.0),
        air_or_oxygen: Input::Missing,
        ..normal()
    };
    let s = score(&set, Scale::Two);
    assert_eq!(s.subscore(Parameter::Spo2), Some(1));
    assert_eq!((s.total, s.upper_bound), (1, 3));

    // On scale 1 SpO2 never needs air or oxygen.
    let set = Parameters {
        spo2: n(95.0),
        air_or_oxygen: Input::Missing,
        ..normal()
    };
    let s = score(&set, Scale::One);
    assert_eq!(s.subscore(Parameter::Spo2), Some(1));
    assert_eq!(s.problems, vec![Problem::Missing(Parameter::AirOrOxygen)]);
}

#[test]
fn an_empty_set_is_incomplete_never_low() {
    let s = score(&Parameters::missing(), Scale::One);
    assert_eq!(s.status, Status::Incomplete);
    assert_eq!((s.total, s.upper_bound), (0, 20));
    assert_eq!(s.band, None);
    assert!(!s.single_parameter_3);
    assert_eq!(s.problems.len(), 7);
    assert_eq!(s.monitoring(), "now: complete the observation set");
    assert!(s.response().contains("not a low score"), "{}", s.response());
}

#[test]
fn a_missing_parameter_is_never_scored_as_normal() {
    // Everything else normal, RR missing: lower bound 0, upper 3, no band.
    let set = Parameters {
        respiration_rate: Input::Missing,
        ..normal()
    };
    let s = score(&set, Scale::One);
    assert_eq!(s.status, Status::Incomplete);
    assert_eq!((s.total, s.upper_bound), (0, 3));
    assert_eq!(s.band, None);
    assert_eq!(s.subscore(Parameter::RespirationRate), None);
    assert_eq!(
        s.problems,
        vec![Problem::Missing(Parameter::RespirationRate)]
    );
}

#[test]
fn a_lower_bound_that_reaches_a_band_escalates_now() {
    // 7 with BP missing: high now.
    let set = Parameters {
        systolic_bp: Input::Missing,
        ..set_scoring(2, 1, false, 0, 2, 0, 2)
    };
    let s = score(&set, Scale::One);
    assert_eq!(s.status, Status::Incomplete);
    assert_eq!((s.total, s.upper_bound), (7, 10));
    assert_eq!(s.band, Some(Band::High));
    assert_eq!(s.monitoring(), "continuous monitoring of vital signs");
    assert!(s.response().starts_with("emergency response"));
    assert!(s.response().contains("incomplete"));

    // 5 with temperature missing: medium now.
    let set = Parameters {
        temperature: Input::Missing,
        ..set_scoring(1, 1, false, 1, 2, 0, 0)
    };
    let s = score(&set, Scale::One);
    assert_eq!((s.total, s.upper_bound, s.band), (5, 8, Some(Band::Medium)));

    // A single 3 with HR missing: low-medium now.
    let set = Parameters {
        pulse: Input::Missing,
        ..set_scoring(3, 0, false, 0, 0, 0, 0)
    };
    let s = score(&set, Scale::One);
    assert_eq!(
        (s.total, s.upper_bound, s.band),
        (3, 6, Some(Band::LowMedium))
    );

    // 4 with no 3 and SpO2 missing: could be medium or low, so no band.
    let set = Parameters {
        spo2: Input::Missing,
        ..set_scoring(1, 0, false, 1, 1, 0, 1)
    };
    let s = score(&set, Scale::One);
    assert_eq!((s.total, s.upper_bound, s.band), (4, 7, None));
}

#[test]
fn stale_parameters_make_the_set_incomplete() {
    let set = Parameters {
        temperature: Input::Stale {
            age: Duration::from_secs(5 * 3600 + 1800),
            limit: Duration::from_secs(4 * 3600),
        },
        ..normal()
    };
    let s = score(&set, Scale::One);
    assert_eq!(s.status, Status::Incomplete);
    assert_eq!((s.total, s.upper_bound, s.band), (0, 3, None));
    assert_eq!(s.problems.len(), 1);
    assert_eq!(
        s.problems[0].to_string(),
        "temp: stale (last value 5 h 30 min old, limit 4 h)"
    );
}

#[test]
fn invalid_parameters_are_not_scored_and_flagged() {
    let set = Parameters {
        pulse: Input::Invalid(
            "`value` 900 /min is not a possible heart rate (0 to 300 /min)".into(),
        ),
        ..normal()
    };
    let s = score(&set, Scale::One);
    assert_eq!(s.status, Status::Invalid);
    assert_eq!(s.subscore(Parameter::Pulse), None);
    assert_eq!((s.total, s.upper_bound, s.band), (0, 3, None));
    assert!(
        s.problems[0]
            .to_string()
            .starts_with("hr: invalid: `value` 900")
    );

    // Invalid wins over incomplete; the lower bound still escalates.
    let set = Parameters {
        pulse: Input::Invalid("bad".into()),
        temperature: Input::Missing,
        ..set_scoring(3, 3, true, 0, 0, 0, 0)
    };
    let s = score(&set, Scale::One);
    assert_eq!(s.status, Status::Invalid);
    assert_eq!((s.total, s.band), (8, Some(Band::High)));
    // problems in chart order
    let order: Vec<Parameter> = s.problems.iter().map(Problem::parameter).collect();
    assert_eq!(order, vec![Parameter::Pulse, Parameter::Temperature]);
}

#[test]
fn charted_values_print_at_the_charts_resolution() {
    let set = Parameters {
        temperature: n(35.05),
        respiration_rate: n(8.5),
        ..normal()
    };
    let s = score(&set, Scale::One);
    assert_eq!(
        s.assessment(Parameter::Temperature)
            .charted
            .unwrap()
            .to_string(),
        "35.1"
    );
    assert_eq!(
        s.assessment(Parameter::RespirationRate)
            .charted
            .unwrap()
            .to_string(),
        "9"
    );
    assert_eq!(Charted::Tenths(-5).to_string(), "-0.5");
}

/// (parameter, lowest and highest normal value, range to draw from)
const NORMAL_RANGES: [(Parameter, f64, f64, f64, f64); 5] = [
    (Parameter::RespirationRate, 12.0, 20.0, 0.0, 60.0),
    (Parameter::Spo2, 96.0, 100.0, 50.0, 100.0),
    (Parameter::SystolicBp, 111.0, 219.0, 40.0, 300.0),
    (Parameter::Pulse, 51.0, 90.0, 0.0, 250.0),
    (Parameter::Temperature, 36.1, 38.0, 30.0, 43.0),
];

proptest! {
    /// Moving away from the normal range never lowers a sub-score: below it, a higher value scores
    /// the same or less; above it, a higher value scores the same or more.
    #[test]
    fn subscores_are_monotone_away_from_normal(which in 0usize..5, a in 0.0f64..1.0, b in 0.0f64..1.0) {
        let (parameter, low, high, min, max) = NORMAL_RANGES[which];
        // two decimals, like a device reading or a window mean
        let at = |t: f64| ((min + t * (max - min)) * 100.0).round() / 100.0;
        let (x, y) = if at(a) <= at(b) { (at(a), at(b)) } else { (at(b), at(a)) };
        let (sx, sy) = (subscore_with(parameter, x).unwrap(), subscore_with(parameter, y).unwrap());
        if y <= high {
            prop_assert!(sx >= sy, "{} {} scores {} but {} scores {}", parameter, x, sx, y, sy);
        }
        if x >= low {
            prop_assert!(sx <= sy, "{} {} scores {} but {} scores {}", parameter, x, sx, y, sy);
        }
        if x >= low && y <= high {
            prop_assert_eq!(sx, 0);
        }
    }

    /// Scale 2 on oxygen: below 88–92 lower is worse, above it higher is worse.
    #[test]
    fn scale2_on_oxygen_is_monotone_away_from_target(x in 50i64..=100, y in 50i64..=100) {
        let (x, y) = (x.min(y), x.max(y));
        let s = |v| spo2_scale2_subscore(v, Some(AirOrOxygen::Oxygen)).unwrap();
        if y <= 92 { prop_assert!(s(x) >= s(y)); }
        if x >= 88 { prop_assert!(s(x) <= s(y)); }
    }

    /// Whatever is known, the score's invariants hold: the total is the sum of the scored
    /// sub-scores, the upper bound is at least the total and is reached by the complete set, an
    /// incomplete set is never "low", and a complete one always has a band.
    #[test]
    fn score_invariants(
        values in proptest::collection::vec(0.0f64..1.0, 7),
        known in proptest::collection::vec(0u8..4, 7),
        scale2 in any::<bool>(),
    ) {
        let input = |i: usize, v: Exact| match known[i] {
            0 => Input::Missing,
            1 => Input::Stale { age: Duration::from_secs(7200), limit: Duration::from_secs(3600) },
            2 if i.is_multiple_of(2) => Input::Invalid("test".into()),
            _ => Input::Present(v),
        };
        let pick = |i: usize, min: f64, max: f64| ex(((min + values[i] * (max - min)) * 10.0).round() / 10.0);
        let set = Parameters {
            respiration_rate: input(0, pick(0, 0.0, 60.0)),
            spo2: input(1, pick(1, 60.0, 100.0)),
            air_or_oxygen: match input(2, Exact::integer(0)) {
                Input::Present(_) => Input::Present(if values[2] < 0.5 { AirOrOxygen::Air } else { AirOrOxygen::Oxygen }),
                Input::Missing => Input::Missing,
                Input::Stale { age, limit } => Input::Stale { age, limit },
                Input::Invalid(r) => Input::Invalid(r),
            },
            systolic_bp: input(3, pick(3, 40.0, 300.0)),
            pulse: input(4, pick(4, 0.0, 250.0)),
            consciousness: match input(5, Exact::integer(0)) {
                Input::Present(_) => Input::Present(Acvpu::ALL[(values[5] * 4.99) as usize]),
                _ => Input::Missing,
            },
            temperature: input(6, pick(6, 30.0, 43.0)),
        };
        let s = score(&set, if scale2 { Scale::Two } else { Scale::One });
        let sum: u8 = s.assessments.iter().filter_map(|a| a.subscore).sum();
        prop_assert_eq!(s.total, sum);
        prop_assert!(s.upper_bound >= s.total && s.upper_bound <= 20);
        prop_assert_eq!(s.status == Status::Complete, s.problems.is_empty());
        prop_assert_eq!(s.status == Status::Complete, s.upper_bound == s.total);
        if s.status == Status::Complete {
            prop_assert!(s.band.is_some());
        } else {
            prop_assert_ne!(s.band, Some(Band::Low));
        }
        for a in &s.assessments {
            prop_assert!(a.upper_bound <= a.parameter.max_subscore());
            if let Some(sub) = a.subscore { prop_assert_eq!(sub, a.upper_bound); }
        }
    }
}
