//! Golden bytes: one sample of every message, pinned as encoded on the wire. A failure here means the
//! encoding changed: if that was intended, it needs a new PROTOCOL_VERSION (see the crate docs).

use super::*;

fn info() -> ProcessInfo {
    ProcessInfo {
        pid: Pid(7),
        uid: 1000,
        process_type: ProcessType::User,
        priority: 80,
        nice: -1,
        state: ProcessState::Running,
        tokens_used: 3,
        allowance: 4000,
        prompt_tokens: 9,
        cpu_ms: 1500,
        age_ms: 2000,
        prompt: Some("hi".into()),
        context_switches: 1,
        slot: Some(0),
        queue_position: None,
        exit: None,
        note: None,
        eta_ms: Some(1500),
        context: Some(ContextUse {
            used: 300,
            size: Some(2048),
            estimated: true,
            swapped: false,
        }),
    }
}

fn requests() -> Vec<(&'static str, Request)> {
    vec![
        (
            "hello",
            Request::Hello(Hello {
                protocol_version: 1,
                peer: "sh".into(),
            }),
        ),
        (
            "submit",
            Request::Submit(SubmitRequest {
                prompt: "hi".into(),
                system: Some("be".into()),
                process_type: ProcessType::System,
                max_tokens: Some(300),
                nice: -5,
                attach: true,
            }),
        ),
        ("list", Request::List(ListRequest { all_users: true })),
        (
            "signal",
            Request::Signal(SignalRequest {
                pid: Pid(7),
                signal: Signal::Kill,
            }),
        ),
        (
            "renice",
            Request::Renice(ReniceRequest {
                pid: Pid(7),
                nice: 19,
            }),
        ),
        ("wait", Request::Wait(WaitRequest { pid: Pid(300) })),
        (
            "output",
            Request::Output(OutputRequest {
                pid: Pid(7),
                follow: true,
            }),
        ),
        (
            "interrupt",
            Request::Interrupt(InterruptRequest {
                kind: InterruptKind::System,
                message: Some("x".into()),
            }),
        ),
        (
            "sched",
            Request::Sched(SchedRequest {
                policy: Some("rr".into()),
            }),
        ),
        ("interrupts", Request::Interrupts(InterruptsRequest {})),
        ("stat", Request::Stat(StatRequest { pid: Pid(7) })),
        (
            "sched-info",
            Request::SchedInfo(SchedRequest { policy: None }),
        ),
        (
            "submit-ask",
            Request::SubmitAsk(SubmitAskRequest {
                submit: SubmitRequest {
                    prompt: "hi".into(),
                    system: None,
                    process_type: ProcessType::User,
                    max_tokens: None,
                    nice: 0,
                    attach: true,
                },
                model: Some("m".into()),
                continue_from: Some(Pid(7)),
            }),
        ),
        (
            "origins",
            Request::Origins(OriginsRequest { pids: vec![Pid(7)] }),
        ),
        (
            "subscribe",
            Request::Subscribe(SubscribeRequest { all_users: true }),
        ),
        ("free", Request::Free(FreeRequest {})),
    ]
}

fn sched_status() -> SchedStatus {
    SchedStatus {
        policy: "priority".into(),
        available: vec!["priority".into()],
        quantum_tokens: 32,
        cpus: 1,
        context_switches: 4,
    }
}

fn replies() -> Vec<(&'static str, Reply)> {
    vec![
        (
            "hello",
            Ok(Response::Hello(HelloReply {
                protocol_version: 1,
                kernel_version: "0.1".into(),
            })),
        ),
        (
            "submitted",
            Ok(Response::Submitted(Submitted { pid: Pid(7) })),
        ),
        (
            "processes",
            Ok(Response::Processes(ProcessList {
                processes: vec![info()],
                cpus: 2,
                policy: "p".into(),
            })),
        ),
        (
            "signalled",
            Ok(Response::Signalled(Signalled {
                pid: Pid(7),
                state: ProcessState::Stopped,
            })),
        ),
        (
            "reniced",
            Ok(Response::Reniced(Reniced {
                pid: Pid(7),
                old_nice: 0,
                new_nice: 5,
            })),
        ),
        (
            "exited",
            Ok(Response::Exited(Exited {
                pid: Pid(7),
                status: ExitStatus::Killed {
                    signal: Signal::Term,
                },
            })),
        ),
        (
            "output",
            Ok(Response::Output(OutputChunk {
                pid: Pid(7),
                text: "t0 ".into(),
            })),
        ),
        ("stopped", Ok(Response::Stopped(Pid(7)))),
        (
            "origins",
            Ok(Response::Origins(OriginList {
                origins: vec![ProcessOrigin {
                    pid: Pid(7),
                    origin: "llmsh".into(),
                }],
            })),
        ),
        ("continued", Ok(Response::Continued(Pid(7)))),
        (
            "interrupted",
            Ok(Response::Interrupted(Interrupted {
                kind: InterruptKind::Timer,
                handler: Some(Pid(8)),
            })),
        ),
        ("sched", Ok(Response::Sched(sched_status()))),
        (
            "interrupt-table",
            Ok(Response::InterruptTable(InterruptTable {
                lines: vec![InterruptLine {
                    kind: InterruptKind::System,
                    raised: 1000,
                    coalesced: 996,
                    handled: 4,
                    waiting: 4,
                    max_waiting: Some(4),
                    handler_type: ProcessType::System,
                }],
                timer_period_ms: Some(60_000),
                spool_dir: "/s".into(),
                spooled: 2,
            })),
        ),
        (
            "waiting",
            Ok(Response::Waiting(WaitingNote {
                pid: Pid(7),
                note: "n".into(),
                news: true,
            })),
        ),
        (
            "failure",
            Err(Failure::new(FailureKind::NoSuchProcess, "no")),
        ),
        (
            "output-part",
            Ok(Response::OutputPart(OutputChunk {
                pid: Pid(7),
                text: "t0 ".into(),
            })),
        ),
        (
            "processes-part",
            Ok(Response::ProcessesPart(ProcessList {
                processes: vec![info()],
                cpus: 2,
                policy: "p".into(),
            })),
        ),
        (
            "sched-info",
            Ok(Response::SchedInfo(SchedInfo {
                status: sched_status(),
                switches: 3,
                urgent_switches: 2,
                resumes_measured: 3,
                reread_prompt_tokens: 900,
                reserved_slots: 1,
                reservation_active: true,
                interactive_type: ProcessType::User,
                reservation_window_ms: 10_000,
                server_slots: None,
            })),
        ),
        (
            "memory",
            Ok(Response::Memory(MemoryStatus {
                backends: vec![BackendMemory {
                    url: "u".into(),
                    context_tokens: Some(2048),
                    context_source: "server".into(),
                    tokenizer: "server".into(),
                    slots: vec![SlotMemory {
                        slot: 0,
                        running: Some(Pid(7)),
                        cached: Some(Pid(7)),
                        used: Some(300),
                    }],
                }],
                swap: SwapUse {
                    enabled: true,
                    dir: Some("/s".into()),
                    used_bytes: 1000,
                    max_bytes: 4000,
                    processes: 1,
                    saves: 2,
                    restores: 1,
                    lost_restores: 0,
                    off_reason: None,
                },
            })),
        ),
        (
            "out-of-memory",
            Err(Failure::new(FailureKind::OutOfMemory, "m")),
        ),
        (
            "failed",
            Ok(Response::Exited(Exited {
                pid: Pid(1),
                status: ExitStatus::Failed { reason: "r".into() },
            })),
        ),
        (
            "event-snapshot",
            Ok(Response::Event(Event::Snapshot(Snapshot {
                processes: vec![info()],
                complete: true,
                cpus: 2,
                policy: "p".into(),
                backend: BackendHealth {
                    circuit: Circuit::Open { retry_in_ms: 500 },
                    failures: 2,
                },
                context_switches: 3,
            }))),
        ),
        ("event-created", Ok(Response::Event(Event::Created(info())))),
        ("event-changed", Ok(Response::Event(Event::Changed(info())))),
        ("event-reaped", Ok(Response::Event(Event::Reaped(Pid(7))))),
        (
            "event-switch",
            Ok(Response::Event(Event::ContextSwitch {
                pid: Pid(7),
                slot: 1,
            })),
        ),
        (
            "event-sample",
            Ok(Response::Event(Event::Sample(Sample {
                interval_ms: 1000,
                tokens_per_s: 2.5,
                switches_per_s: 0.5,
                queue: 1,
                running: 1,
                cpus: 2,
                slots: vec![Some(Pid(7)), None],
                processes: vec![ProcessTick {
                    pid: Pid(7),
                    priority: 80,
                    tokens_used: 3,
                    prompt_tokens: 9,
                    cpu_ms: 1500,
                    tokens_per_s: 2.5,
                }],
            }))),
        ),
        (
            "event-backend",
            Ok(Response::Event(Event::Backend(BackendHealth {
                circuit: Circuit::HalfOpen,
                failures: 1,
            }))),
        ),
        (
            "event-interrupt",
            Ok(Response::Event(Event::Interrupt(InterruptRaised {
                kind: InterruptKind::Timer,
                handler: None,
            }))),
        ),
        (
            "event-lost",
            Ok(Response::Event(Event::Lost { count: 300 })),
        ),
    ]
}

/// A user's attached question "hi" for the configured model: the ask inside the later submit
/// variants' golden messages.
fn plain_ask() -> SubmitAskRequest {
    SubmitAskRequest {
        submit: SubmitRequest {
            prompt: "hi".into(),
            system: None,
            process_type: ProcessType::User,
            max_tokens: None,
            nice: 0,
            attach: true,
        },
        model: None,
        continue_from: None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const GOLDEN_REQUESTS: &[(&str, &str)] = &[
    ("hello", "0001027368"),
    ("submit", "01026869010262650401fb2c01fb01"),
    ("list", "0201"),
    ("signal", "030702"),
    ("renice", "040713"),
    ("wait", "05fb2c01"),
    ("output", "060701"),
    ("interrupt", "0702010178"),
    ("sched", "0801027272"),
    ("interrupts", "09"),
    ("stat", "0a07"),
    ("sched-info", "0b00"),
    ("submit-ask", "0c026869000300000101016d0107"),
    ("origins", "0d0107"),
    ("subscribe", "0e01"),
    ("free", "0f"),
];
const GOLDEN_REPLIES: &[(&str, &str)] = &[
    ("origins", "00100107056c6c6d7368"),
    ("hello", "00000103302e31"),
    ("submitted", "000107"),
    (
        "processes",
        "00020107fbe80303a0ff0103fba00f09fbdc05fbd0070102686901010000000001fbdc0501fb2c0101fb00080100020170",
    ),
    ("signalled", "00030702"),
    ("reniced", "0004070005"),
    ("exited", "0005070203"),
    ("output", "00060703743020"),
    ("stopped", "000707"),
    ("continued", "000807"),
    ("interrupted", "0009010108"),
    ("sched", "000a087072696f7269747901087072696f72697479200104"),
    (
        "interrupt-table",
        "000b0102fbe803fbe403040401040401fb60ea022f7302",
    ),
    ("waiting", "000e07016e01"),
    ("failure", "0101026e6f"),
    (
        "memory",
        "001201017501fb0008067365727665720673657276657201000107010701fb2c010101022f73fbe803fba00f0102010000",
    ),
    ("out-of-memory", "0108016d"),
    ("failed", "000501010172"),
    ("output-part", "000c0703743020"),
    (
        "processes-part",
        "000d0107fbe80303a0ff0103fba00f09fbdc05fbd0070102686901010000000001fbdc0501fb2c0101fb00080100020170",
    ),
    (
        "sched-info",
        "000f087072696f7269747901087072696f72697479200104030203fb8403010103fb102700",
    ),
    (
        "event-snapshot",
        "0011000107fbe80303a0ff0103fba00f09fbdc05fbd0070102686901010000000001fbdc0501fb2c0101fb000801000102017001fbf4010203",
    ),
    (
        "event-created",
        "00110107fbe80303a0ff0103fba00f09fbdc05fbd0070102686901010000000001fbdc0501fb2c0101fb00080100",
    ),
    (
        "event-changed",
        "00110207fbe80303a0ff0103fba00f09fbdc05fbd0070102686901010000000001fbdc0501fb2c0101fb00080100",
    ),
    ("event-reaped", "00110307"),
    ("event-switch", "0011040701"),
    (
        "event-sample",
        "001105fbe8030000000000000440000000000000e03f010102020107000107a00309fbdc050000000000000440",
    ),
    ("event-backend", "0011060201"),
    ("event-interrupt", "0011070100"),
    ("event-lost", "001108fb2c01"),
];

#[test]
fn every_message_encodes_to_its_golden_bytes_and_back() {
    let mut mismatches = Vec::new();
    for (name, msg) in requests() {
        let bytes = encode(&msg).unwrap();
        assert_eq!(decode::<Request>(&bytes).unwrap(), msg, "{name} round trip");
        let want = GOLDEN_REQUESTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| *h);
        if want != Some(hex(&bytes).as_str()) {
            mismatches.push(format!("    (\"{name}\", \"{}\"),", hex(&bytes)));
        }
    }
    for (name, msg) in replies() {
        let bytes = encode(&msg).unwrap();
        assert_eq!(decode::<Reply>(&bytes).unwrap(), msg, "{name} round trip");
        let want = GOLDEN_REPLIES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| *h);
        if want != Some(hex(&bytes).as_str()) {
            mismatches.push(format!("    (\"{name}\", \"{}\"),", hex(&bytes)));
        }
    }
    assert!(
        mismatches.is_empty(),
        "encodings differ from the golden bytes:\n{}",
        mismatches.join("\n")
    );
}

/// The `Backends` verb and its answer (several backends, SMP).
#[test]
fn backends_messages_encode_to_their_golden_bytes() {
    let request = Request::Backends(BackendsRequest {});
    let reply: Reply = Ok(Response::Backends(BackendTable {
        backends: vec![BackendRow {
            name: "gpu".into(),
            url: "http://g/v1".into(),
            kind: "vllm".into(),
            up: true,
            removed: false,
            first_slot: 2,
            slots: 4,
            busy: 1,
            models: vec!["m".into()],
            tokens: 300,
            tokens_per_sec: 25,
            swap: true,
            loaded_model: Some("m".into()),
            down_reason: None,
        }],
        migrations: 3,
        model_switches: 1,
    }));
    let request_bytes = encode(&request).unwrap();
    assert_eq!(decode::<Request>(&request_bytes).unwrap(), request);
    assert_eq!(hex(&request_bytes), "10");
    let reply_bytes = encode(&reply).unwrap();
    assert_eq!(decode::<Reply>(&reply_bytes).unwrap(), reply);
    assert_eq!(
        hex(&reply_bytes),
        "001301036770750b687474703a2f2f672f763104766c6c6d010002040101016dfb2c01190101016d000301"
    );
}

/// Golden bytes of the pipe and group messages (see [`super::pipes`]).
#[test]
fn pipe_and_group_messages_encode_to_their_golden_bytes() {
    let linked = Request::SubmitLinked(SubmitLinkedRequest {
        ask: plain_ask(),
        input_from: Some(Pid(7)),
        input: Some("x".into()),
        pgid: Some(Pid(6)),
        deadline: None,
    });
    let group = Request::SignalGroup(SignalGroupRequest {
        pgid: Pid(6),
        signal: Signal::Pipe,
    });
    let links = Request::Links(LinksRequest { pids: vec![Pid(7)] });
    let signalled: Reply = Ok(Response::GroupSignalled(GroupSignalled {
        pgid: Pid(6),
        processes: vec![Signalled {
            pid: Pid(7),
            state: ProcessState::Blocked,
        }],
    }));
    let link_list: Reply = Ok(Response::Links(LinkList {
        links: vec![ProcessLink {
            pid: Pid(7),
            ppid: Some(Pid(6)),
            pgid: Pid(6),
            blocked_on: Some(Pid(6)),
        }],
    }));
    let mut shown = Vec::new();
    for (name, request) in [
        ("submit-linked", linked),
        ("signal-group", group),
        ("links", links),
    ] {
        let bytes = encode(&request).unwrap();
        assert_eq!(decode::<Request>(&bytes).unwrap(), request, "{name}");
        shown.push(format!("{name}={}", hex(&bytes)));
    }
    for (name, reply) in [("group-signalled", signalled), ("link-list", link_list)] {
        let bytes = encode(&reply).unwrap();
        assert_eq!(decode::<Reply>(&bytes).unwrap(), reply, "{name}");
        shown.push(format!("{name}={}", hex(&bytes)));
    }
    let golden = [
        "submit-linked=11026869000300000100000107010178010600",
        "signal-group=120607",
        "links=130107",
        "group-signalled=001406010703",
        "link-list=001501070106060106",
    ];
    assert_eq!(shown, golden);
}

/// Version 3's messages: a submission with a deadline, SIGXCPU in an exit, and the quota table.
fn version_3_messages() -> Vec<(&'static str, Reply, Option<Request>)> {
    let by = Request::SubmitBy(SubmitByRequest {
        ask: plain_ask(),
        deadline: Deadline {
            within_ms: 30_000,
            soft: true,
        },
    });
    let xcpu = Ok(Response::Exited(Exited {
        pid: Pid(7),
        status: ExitStatus::Killed {
            signal: Signal::Xcpu,
        },
    }));
    let table = Ok(Response::Quotas(QuotaTable {
        quotas: vec![QuotaRow {
            subject: "al".into(),
            is_type: false,
            used: 12,
            limit: 200,
            window_ms: 60_000,
            renews_in_ms: 1000,
            waiting: 1,
        }],
    }));
    vec![
        (
            "submit-by",
            Ok(Response::Submitted(Submitted { pid: Pid(7) })),
            Some(by),
        ),
        ("exited-xcpu", xcpu, None),
        ("quota", table, Some(Request::Quota(QuotaRequest {}))),
    ]
}

const GOLDEN_VERSION_3: &[(&str, &str, &str)] = &[
    ("submit-by", "1402686900030000010000fb307501", "000107"),
    ("exited-xcpu", "", "0005070208"),
    ("quota", "15", "00160102616c000cc8fb60eafbe80301"),
];

#[test]
fn version_3_messages_encode_to_their_golden_bytes_and_back() {
    let mut mismatches = Vec::new();
    for (name, reply, request) in version_3_messages() {
        let reply_bytes = encode(&reply).unwrap();
        assert_eq!(
            decode::<Reply>(&reply_bytes).unwrap(),
            reply,
            "{name} round trip"
        );
        let request_hex = request.map_or(String::new(), |r| {
            let bytes = encode(&r).unwrap();
            assert_eq!(decode::<Request>(&bytes).unwrap(), r, "{name} round trip");
            hex(&bytes)
        });
        let got = (name, request_hex, hex(&reply_bytes));
        let want = GOLDEN_VERSION_3.iter().find(|(n, _, _)| *n == name);
        if want.map(|(n, q, r)| (*n, q.to_string(), r.to_string())) != Some(got.clone()) {
            mismatches.push(format!(
                "    (\"{}\", \"{}\", \"{}\"),",
                got.0, got.1, got.2
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "encodings differ from the golden bytes:\n{}",
        mismatches.join("\n")
    );
}

/// Protocol 3: `SchedInfo` ends with the server's slot count, once the kernel knows it.
#[test]
fn sched_info_carries_the_servers_slots() {
    let info = SchedInfo {
        status: sched_status(),
        switches: 0,
        urgent_switches: 0,
        resumes_measured: 0,
        reread_prompt_tokens: 0,
        reserved_slots: 1,
        reservation_active: false,
        interactive_type: ProcessType::User,
        reservation_window_ms: 500,
        server_slots: Some(2),
    };
    let reply: Reply = Ok(Response::SchedInfo(info));
    let bytes = encode(&reply).unwrap();
    assert_eq!(
        hex(&bytes),
        "000f087072696f7269747901087072696f7269747920010400000000010003fbf4010102"
    );
    assert_eq!(decode::<Reply>(&bytes).unwrap(), reply);
}

/// A linked submit of [`plain_ask`] with no link: what `query --syscalls` sends.
fn plain_linked() -> SubmitLinkedRequest {
    SubmitLinkedRequest {
        ask: plain_ask(),
        input_from: None,
        input: None,
        pgid: None,
        deadline: None,
    }
}

/// Golden bytes of `SubmitSyscalls` (`query --syscalls`): a new variant at the end of `Request`,
/// holding a `SubmitLinked` request.
#[test]
fn submit_syscalls_encodes_to_its_golden_bytes() {
    let request = Request::SubmitSyscalls(plain_linked());
    let bytes = encode(&request).unwrap();
    assert_eq!(decode::<Request>(&bytes).unwrap(), request);
    assert_eq!(hex(&bytes), "160268690003000001000000000000");
}

/// Golden bytes of `SubmitMustCall` (`query --syscalls --must-call`): a new variant at the end of
/// `Request`, holding a `SubmitLinked` request as `SubmitSyscalls` does.
#[test]
fn submit_must_call_encodes_to_its_golden_bytes() {
    let request = Request::SubmitMustCall(plain_linked());
    let bytes = encode(&request).unwrap();
    assert_eq!(decode::<Request>(&bytes).unwrap(), request);
    assert_eq!(hex(&bytes), "170268690003000001000000000000");
}
