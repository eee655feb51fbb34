//! `wasmgate serve` options of the live inventory, and the duration syntax of the CLI.

use std::time::Duration;

use clap::Args;

use super::LiveConfig;

/// Live inventory options of `wasmgate serve`.
#[derive(Clone, Debug, Args)]
pub struct LiveArgs {
    /// NATS server hosts heartbeat to (e.g. nats://nats.wasmcloud-system:4222): enables the live
    /// inventory from heartbeats (subject runtime.operator.heartbeat.>) for admission and the
    /// `hosts` API. Without it (and without --inventory), only hosts written through the API.
    #[arg(long, env = "WASMGATE_NATS_URL", conflicts_with = "inventory")]
    pub nats_url: Option<String>,
    /// A host silent this long is Ready=False (Reporting=False and Ready=Unknown after half of
    /// it). Upstream's UnreachableTimeout.
    #[arg(long, default_value = "60s", value_parser = parse_duration, env = "WASMGATE_HEARTBEAT_TIMEOUT")]
    pub heartbeat_timeout: Duration,
    /// How long a Ready=False host stays listed before it is removed.
    #[arg(long, default_value = "5m", value_parser = parse_duration, env = "WASMGATE_HOST_RETENTION")]
    pub host_retention: Duration,
    /// After start or a NATS reconnect, how long the connection must be up before any host
    /// may turn False [default: --heartbeat-timeout].
    #[arg(long, value_parser = parse_duration, env = "WASMGATE_HEARTBEAT_SETTLE")]
    pub heartbeat_settle: Option<Duration>,
    /// Watch events kept for resuming `kubectl get hosts -w` and informers (older versions get
    /// 410 Gone and relist).
    #[arg(long, default_value_t = 10_000)]
    pub watch_history: usize,
    /// With --nats-url: report not ready (/readyz) until NATS is connected and this long has
    /// passed, so the inventory has heard every host once (hosts heartbeat every 15 s).
    #[arg(long, default_value = "16s", value_parser = parse_duration, env = "WASMGATE_INVENTORY_WARMUP")]
    pub inventory_warmup: Duration,
}

impl LiveArgs {
    /// The inventory configuration these options describe.
    pub fn config(&self) -> LiveConfig {
        LiveConfig {
            heartbeat_timeout: self.heartbeat_timeout,
            retention: self.host_retention,
            settle: self.heartbeat_settle.unwrap_or(self.heartbeat_timeout),
            history: self.watch_history,
        }
    }
}

/// Parses a duration: a sequence of `<number><unit>` with units `ms`, `s`, `m`, `h` (`1m30s`,
/// `500ms`, `15s`), or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?}: missing unit (ms, s, m or h)"))?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?}: {number:?} is not a number"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m or h)")),
        };
        total +=
            Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))?;
        rest = next;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "s", "5x", "-1s", "1s2"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
