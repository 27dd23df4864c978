//! The result rows, the printed table, the bars and `bars met`.

/// Which row a row is. A row that takes a figure from another row finds it by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// A proxy call with the same-host fast path beside a raw Unix-socket ping-pong of the same
    /// sizes (the row's baseline is the raw round trip).
    UnixCall,
    /// The fast-path proxy call beside a spin-then-futex ping-pong through one shared page.
    UnixCallFutex,
    /// A proxy call with the fast path off (`Transport::Socket`) beside the raw Unix ping-pong.
    UnixCallSocket,
    /// The fast-path proxy call in calls per second, beside Python's.
    PythonCall,
    /// A proxy call beside a raw TCP loopback ping-pong of the same sizes.
    TcpCall,
    /// A proxy call over TCP with sealed frames beside the same call with plain frames.
    TcpSealing,
    CreateDrop,
    ManagerQueue,
    /// The manager Queue row with the fast path off (`Transport::Socket`).
    ManagerQueueSocket,
    /// A round trip between two processes through a user type whose methods wait for each
    /// other, fast path beside `Transport::Socket`.
    UserBlocking,
    /// The 99th percentile of put -> get latency to a consumer blocked in `get` while the
    /// producer calls hot, fast path beside `Transport::Socket`.
    WokenGetP99,
    /// One `get` per raw Unix round trip: what a manager Queue's consumer can reach at most.
    QueueReference,
    DictInsert,
    DictGet,
    ManagerLock,
    NamespaceGet,
    /// 64 client threads in 4 processes, calls per second, fast path beside fast path off.
    ManyClients,
    /// CPU seconds per call of 64 client threads (clients and manager), fast path, beside one
    /// client thread's.
    ClientsCpu,
    /// The same with the fast path off.
    ClientsCpuSocket,
    StartToFirstCall,
    MemoryPerObject,
    ShmQueue,
    SharedValue,
    ShmLock,
    ArrayReadInto,
    ArrayCopyFromSlice,
    /// A `Vec<u8>` echo of one size (its index in `rows/bulk.rs`) beside `memcpy`.
    BulkEcho(usize),
    /// The time of a 1 KiB echo beside an 8 B echo.
    BulkSmall,
    /// The spin-then-futex ping-pong of 1 KiB beside that of 16 B: what the hardware charges
    /// for the kibibyte of the row above.
    BulkSmallFloor,
    /// An async proxy call beside the blocking one, fast path.
    AsyncCall,
    /// The same with the fast path off.
    AsyncCallSocket,
    /// 1,000 async callers beside 64 blocking threads, calls per second.
    AsyncMany,
}

/// A measured figure, with its unit.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fig {
    /// Seconds per operation (shown in µs/op or ns/op).
    PerOp(f64),
    /// Operations per second, with the operation's name (`calls`, `msgs`, `ops`).
    Rate(f64, &'static str),
    /// Bytes per second (shown in GB/s).
    Bandwidth(f64),
    /// Milliseconds.
    Ms(f64),
    /// Bytes per object.
    BytesEach(f64),
}

impl Fig {
    /// The value, oriented so that `ratio` = procman ÷ baseline makes sense in the unit.
    pub(crate) fn value(self) -> f64 {
        match self {
            Fig::PerOp(v) | Fig::Rate(v, _) | Fig::Bandwidth(v) | Fig::Ms(v) | Fig::BytesEach(v) => v,
        }
    }

    fn show(self) -> String {
        match self {
            Fig::PerOp(s) if s < 1e-6 => format!("{:.1} ns/op", s * 1e9),
            Fig::PerOp(s) => format!("{:.2} µs/op", s * 1e6),
            Fig::Rate(r, what) => format!("{} {what}/s", thousands(r)),
            Fig::Bandwidth(b) => format!("{:.2} GB/s", b / 1e9),
            Fig::Ms(ms) => format!("{ms:.1} ms"),
            Fig::BytesEach(b) => format!("{b:.0} B/object"),
        }
    }
}

fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The bar a row is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bar {
    /// No bar: the row is for information.
    None,
    /// procman's cost at most this many times the baseline's.
    CostAtMost(f64),
    /// procman's rate at least this many times the baseline's.
    RateAtLeast(f64),
    /// procman's rate at least this many operations per second.
    AbsRateAtLeast(f64),
    /// procman's time at most this many milliseconds.
    AbsMsAtMost(f64),
    /// procman's bandwidth at least this many bytes per second.
    AbsBandwidthAtLeast(f64),
}

/// A figure, or why it was not measured (`—`: the row has no such figure).
pub(crate) type Measured = Result<Fig, String>;

/// One row of the table: procman's figure beside its baseline, and the bar it is held to.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) key: Key,
    pub(crate) name: String,
    pub(crate) procman: Measured,
    pub(crate) baseline: Measured,
    pub(crate) bar: Bar,
}

impl Row {
    pub(crate) fn new(key: Key, name: impl Into<String>, procman: Measured, baseline: Measured, bar: Bar) -> Row {
        Row { key, name: name.into(), procman, baseline, bar }
    }

    fn ratio(&self) -> Option<f64> {
        match (&self.procman, &self.baseline) {
            (Ok(p), Ok(b)) if b.value() > 0.0 => Some(p.value() / b.value()),
            _ => None,
        }
    }

    fn bar_text(&self) -> String {
        match self.bar {
            Bar::None => "—".into(),
            Bar::CostAtMost(x) => format!("≤ {x}x"),
            Bar::RateAtLeast(x) => format!("≥ {x}x"),
            Bar::AbsRateAtLeast(v) => format!("≥ {} /s", thousands(v)),
            Bar::AbsMsAtMost(v) => format!("≤ {v} ms"),
            Bar::AbsBandwidthAtLeast(v) => format!("≥ {} GB/s", v / 1e9),
        }
    }

    /// `None` for rows without a bar; otherwise whether it is met and the text to show.
    fn met(&self) -> Option<(bool, String)> {
        let not_measured = |e: &String| Some((false, format!("not measured ({e})")));
        let p = match (&self.bar, &self.procman) {
            (Bar::None, _) => return None,
            (_, Err(e)) => return not_measured(e),
            (_, Ok(p)) => p.value(),
        };
        match self.bar {
            Bar::None => None,
            Bar::CostAtMost(x) | Bar::RateAtLeast(x) => {
                let r = match (self.ratio(), &self.baseline) {
                    (Some(r), _) => r,
                    (None, Err(e)) => return not_measured(e),
                    (None, Ok(_)) => return not_measured(&"baseline is zero".to_string()),
                };
                if matches!(self.bar, Bar::CostAtMost(_)) {
                    Some(if r <= x {
                        (true, "yes".into())
                    } else {
                        (false, format!("no: {:.0}% over", (r / x - 1.0) * 100.0))
                    })
                } else {
                    Some(if r >= x {
                        (true, "yes".into())
                    } else {
                        (false, format!("no: {:.0}% short", (1.0 - r / x) * 100.0))
                    })
                }
            }
            Bar::AbsRateAtLeast(v) | Bar::AbsBandwidthAtLeast(v) => Some(if p >= v {
                (true, "yes".into())
            } else {
                (false, format!("no: {:.0}% short", (1.0 - p / v) * 100.0))
            }),
            Bar::AbsMsAtMost(v) => Some(if p <= v {
                (true, "yes".into())
            } else {
                (false, format!("no: {:.0}% over", (p / v - 1.0) * 100.0))
            }),
        }
    }
}

fn show(f: &Measured) -> String {
    match f {
        Ok(f) => f.show(),
        Err(e) if e == "—" => e.clone(),
        Err(e) => format!("not measured ({e})"),
    }
}

/// The rows of a run, in the order they were measured.
#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: Vec<Row>,
}

impl Table {
    pub(crate) fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// The row `key`, if it was measured in this run.
    pub(crate) fn get(&self, key: Key) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }

    /// Prints the markdown table, then `bars met: X/Y`: of the Y rows with a bar, X met it.
    pub(crate) fn print(&self) {
        println!("| benchmark | procman | baseline | ratio | bar | met |");
        println!("| --- | ---: | ---: | ---: | --- | --- |");
        let (mut met, mut bars) = (0, 0);
        for r in &self.rows {
            let ratio =
                r.ratio().map_or("—".into(), |x| if x >= 100.0 { format!("{x:.0}x") } else { format!("{x:.2}x") });
            let m = match r.met() {
                None => "—".to_string(),
                Some((ok, text)) => {
                    bars += 1;
                    met += usize::from(ok);
                    text
                }
            };
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r.name,
                show(&r.procman),
                show(&r.baseline),
                ratio,
                r.bar_text(),
                m
            );
        }
        println!();
        println!("bars met: {met}/{bars}");
    }
}
