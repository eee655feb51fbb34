//! The store type and the built-in WASI set, as wasmCloud v2.7.0 adds it to every component's
//! linker (`crates/wash-runtime/src/engine/mod.rs` `add_wasi_to_linker` and the wasi:http branch
//! of `Engine::initialize_workload_component`). The functions called are the real
//! `wasmtime_wasi` / `wasmtime_wasi_http` 47.0.3 ones, so the instance names and function types
//! in the linker are exactly the host's. Nothing here is ever run: the oracle only
//! pre-instantiates.

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::WasiHttpCtx;

/// The store data. Upstream uses `SharedCtx` (`engine/ctx.rs`); only the trait bounds of the
/// `add_to_linker` functions matter here.
pub(crate) struct Ctx {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: NoHooks,
}

impl Ctx {
    #[allow(dead_code)]
    pub(crate) fn new() -> Self {
        Ctx {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: NoHooks,
        }
    }
}

/// wasi:http hooks that never send anything (the `default-send-request` feature is off).
struct NoHooks;

impl wasmtime_wasi_http::p2::WasiHttpHooks for NoHooks {
    fn send_request(
        &mut self,
        _request: hyper::Request<wasmtime_wasi_http::p2::body::HyperOutgoingBody>,
        _config: wasmtime_wasi_http::p2::types::OutgoingRequestConfig,
    ) -> wasmtime_wasi_http::p2::HttpResult<wasmtime_wasi_http::p2::types::HostFutureIncomingResponse>
    {
        Err(wasmtime_wasi_http::p2::HttpError::trap(
            wasmtime::Error::msg("the oracle never sends requests"),
        ))
    }
}

type P3Body = http_body_util::combinators::UnsyncBoxBody<
    wasmtime_wasi_io::bytes::Bytes,
    wasmtime_wasi_http::p3::bindings::http::types::ErrorCode,
>;
type P3Done = Box<
    dyn std::future::Future<
            Output = Result<(), wasmtime_wasi_http::p3::bindings::http::types::ErrorCode>,
        > + Send,
>;

impl wasmtime_wasi_http::p3::WasiHttpHooks for NoHooks {
    fn send_request(
        &mut self,
        _request: hyper::Request<P3Body>,
        _options: Option<wasmtime_wasi_http::p3::RequestOptions>,
        _fut: P3Done,
    ) -> Box<
        dyn std::future::Future<
                Output = Result<
                    (hyper::Response<P3Body>, P3Done),
                    wasmtime_wasi::TrappableError<
                        wasmtime_wasi_http::p3::bindings::http::types::ErrorCode,
                    >,
                >,
            > + Send,
    > {
        Box::new(async {
            Err(wasmtime_wasi::TrappableError::trap(wasmtime::Error::msg(
                "the oracle never sends requests",
            )))
        })
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_io::IoView for Ctx {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl wasmtime_wasi_http::p2::WasiHttpView for Ctx {
    fn http(&mut self) -> wasmtime_wasi_http::p2::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::p2::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl wasmtime_wasi_http::p3::WasiHttpView for Ctx {
    fn http(&mut self) -> wasmtime_wasi_http::p3::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::p3::WasiHttpCtxView {
            hooks: &mut self.hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

/// The calls of upstream `add_wasi_to_linker` (`crates/wash-runtime/src/engine/mod.rs`, v2.7.0),
/// in its order. The host's own socket implementation (`crate::sockets`) is registered there
/// through the same `wasmtime_wasi` bindings (`p2::bindings::sockets::*::add_to_linker`,
/// `p3::bindings::sockets::{ip_name_lookup,types}::add_to_linker`, see upstream
/// `src/sockets/mod.rs` `add_p3_to_linker`), so the instance names and types are the same as
/// wasmtime-wasi's default implementation used here. `wasi:tls` is behind the `wasi-tls` Cargo
/// feature, which stock `wash` builds do not enable, so it is left out.
pub(crate) fn add_wasi_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sockets};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};

    // P2: io (error, poll, streams)
    wasmtime_wasi_io::add_to_linker_async(linker)?;
    // P2: filesystem
    filesystem::types::add_to_linker::<Ctx, WasiFilesystem>(linker, Ctx::filesystem)?;
    filesystem::preopens::add_to_linker::<Ctx, WasiFilesystem>(linker, Ctx::filesystem)?;
    // P2: clocks
    clocks::wall_clock::add_to_linker::<Ctx, WasiClocks>(linker, Ctx::clocks)?;
    clocks::monotonic_clock::add_to_linker::<Ctx, WasiClocks>(linker, Ctx::clocks)?;
    // P2: random
    random::random::add_to_linker::<Ctx, WasiRandom>(linker, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<Ctx, WasiRandom>(linker, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<Ctx, WasiRandom>(linker, |t| t.ctx().ctx.random())?;
    // P2: cli
    cli::exit::add_to_linker::<Ctx, WasiCli>(linker, Ctx::cli)?;
    cli::environment::add_to_linker::<Ctx, WasiCli>(linker, Ctx::cli)?;
    cli::stdin::add_to_linker::<Ctx, WasiCli>(linker, Ctx::cli)?;
    cli::stdout::add_to_linker::<Ctx, WasiCli>(linker, Ctx::cli)?;
    cli::stderr::add_to_linker::<Ctx, WasiCli>(linker, Ctx::cli)?;
    cli::terminal_input::add_to_linker::<Ctx, WasiCli>(linker, Ctx::cli)?;
    cli::terminal_output::add_to_linker::<Ctx, WasiCli>(linker, Ctx::cli)?;
    cli::terminal_stdin::add_to_linker::<Ctx, WasiCli>(linker, Ctx::cli)?;
    cli::terminal_stdout::add_to_linker::<Ctx, WasiCli>(linker, Ctx::cli)?;
    cli::terminal_stderr::add_to_linker::<Ctx, WasiCli>(linker, Ctx::cli)?;
    // P2: sockets
    sockets::tcp::add_to_linker::<Ctx, WasiSockets>(linker, Ctx::sockets)?;
    sockets::udp::add_to_linker::<Ctx, WasiSockets>(linker, Ctx::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<Ctx, WasiSockets>(linker, Ctx::sockets)?;
    sockets::udp_create_socket::add_to_linker::<Ctx, WasiSockets>(linker, Ctx::sockets)?;
    sockets::instance_network::add_to_linker::<Ctx, WasiSockets>(linker, Ctx::sockets)?;
    let net_options = sockets::network::LinkOptions::default();
    sockets::network::add_to_linker::<Ctx, WasiSockets>(linker, &net_options, Ctx::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<Ctx, WasiSockets>(linker, Ctx::sockets)?;
    // P3 (@0.3.0): cli, clocks, filesystem, random, then sockets (types, ip-name-lookup)
    wasmtime_wasi::p3::cli::add_to_linker(linker)?;
    wasmtime_wasi::p3::clocks::add_to_linker(linker)?;
    wasmtime_wasi::p3::filesystem::add_to_linker(linker)?;
    wasmtime_wasi::p3::random::add_to_linker(linker)?;
    wasmtime_wasi::p3::sockets::add_to_linker(linker)?;
    Ok(())
}

/// The wasi:http branch: upstream adds P2 `types`/`outgoing-handler` and P3 `types`/`client`
/// only when `uses_wasi_http(&component)`.
pub(crate) fn add_http_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    wasmtime_wasi_http::p3::add_to_linker(linker)?;
    Ok(())
}

/// Upstream `uses_wasi_http` (`engine/mod.rs`): any top-level import or export name that starts
/// with `wasi:http`.
pub(crate) fn uses_wasi_http(component: &Component) -> bool {
    let ty = component.component_type();
    let engine = component.engine();
    ty.imports(engine).any(|(n, _)| n.starts_with("wasi:http"))
        || ty.exports(engine).any(|(n, _)| n.starts_with("wasi:http"))
}

/// Upstream `exports_wasi_http` (`engine/mod.rs`).
pub(crate) fn exports_wasi_http(component: &Component) -> bool {
    let ty = component.component_type();
    let exports = ty
        .exports(component.engine())
        .any(|(n, _)| n.starts_with("wasi:http"));
    exports
}
