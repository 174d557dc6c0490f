//! The [`Runtime`]: the wasmtime engine, its epoch ticker, the linker shared
//! by every plugin, and the compiled-component cache.
//!
//! One [`Engine`] serves every plugin. Epoch interruption is on; a
//! background thread advances the epoch every [`EPOCH_TICK`], which bounds
//! how long a guest runs between deadline checks.
//!
//! Compiling a component is expensive (tens of ms for a Rust guest, seconds
//! for a Python one), so compiled components are cached in memory, keyed by
//! the SHA-256 of the component bytes, and optionally on disk as `.cwasm`
//! files whose names also carry a hash of the engine's compilation settings:
//! an artifact made by a differently configured engine is never loaded.
//!
//! Where memory may not become executable (systemd's `MemoryDenyWriteExecute=yes`,
//! `prctl(PR_SET_MDWE)`), compiled code is mapped read-execute from a memfd instead
//! (see [`code_memory`]); the engine probes for that once, when created.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use crate::host::PluginCtx;
use crate::{PluginHandle, PluginSpec, RestartPolicy, World};

pub mod code_memory;
pub use code_memory::{CodeMemory, ExecGain};

/// How often the epoch advances.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The largest component file accepted.
pub const MAX_COMPONENT_SIZE: u64 = 256 << 20;

/// The engine, linker and cache shared by all plugins of a runtime.
pub(crate) struct EngineShared {
    pub engine: Engine,
    pub linker: Linker<PluginCtx>,
    cache: ComponentCache,
    ticker_stop: Arc<AtomicBool>,
    /// How compiled code is made executable (never `Auto`).
    code_memory: CodeMemory,
}

impl EngineShared {
    /// An engine with [`CodeMemory::Auto`] (unit tests).
    #[cfg(test)]
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        Self::with_code_memory(cache_dir, CodeMemory::Auto)
    }

    /// Configures the engine (compiled code made executable as `code_memory` says),
    /// starts the ticker, links the host interfaces.
    pub fn with_code_memory(
        cache_dir: Option<PathBuf>,
        code_memory: CodeMemory,
    ) -> anyhow::Result<Self> {
        let gain = ExecGain::probe();
        let code_memory = code_memory.resolve(&gain);
        if let Some(refused) = &gain.refused {
            let why = if gain.prctl_mdwe {
                "prctl MDWE"
            } else {
                "seccomp or a security module"
            };
            tracing::info!(
                code_memory = ?code_memory,
                "memory may not become executable here ({why}: {refused}); \
                 plugin code is mapped read-execute from memfds"
            );
        }
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // The workspace's wasmtime has the `gc` feature but no collector;
        // plugins need neither GC types nor the proposals built on them.
        config.wasm_gc(false);
        config.wasm_function_references(false);
        config.wasm_exceptions(false);
        config.gc_support(false);
        // Plugins are called one call at a time per store; without the
        // component-model-async machinery a call costs about half as much.
        config.concurrency_support(false);
        // Not a compilation setting: `.cwasm` files are the same whichever is used.
        config.with_custom_code_memory(code_memory.hook()?);
        let engine = Engine::new(&config).map_err(wasmtime_error)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(wasmtime_error)?;
        crate::host::add_to_linker(&mut linker)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let ticking = engine.clone();
        std::thread::Builder::new()
            .name("wasmbgp-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })
            .context("starting the epoch ticker thread")?;

        let engine_key = {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut hasher);
            hasher.finish()
        };
        Ok(EngineShared {
            engine,
            linker,
            cache: ComponentCache {
                dir: cache_dir,
                engine_key,
                memory: Mutex::new(HashMap::new()),
                by_stat: Mutex::new(HashMap::new()),
            },
            ticker_stop,
            code_memory,
        })
    }

    /// Loads the component at `path`, from the cache when possible.
    pub fn load(&self, path: &Path) -> anyhow::Result<Component> {
        self.cache.load(&self.engine, path)
    }
}

impl Drop for EngineShared {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Compiled components by content hash, in memory and optionally on disk.
struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: u64,
    memory: Mutex<HashMap<[u8; 32], Component>>,
    /// The hash of a file last seen with this path, size and modification time, so that
    /// loading an unchanged file again (reload, many plugins sharing one component) costs
    /// a `stat` instead of reading and hashing it (18 MB for a Python component).
    by_stat: Mutex<HashMap<(PathBuf, u64, std::time::SystemTime), [u8; 32]>>,
}

impl ComponentCache {
    fn load(&self, engine: &Engine, path: &Path) -> anyhow::Result<Component> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("component {}", path.display()))?;
        if meta.len() > MAX_COMPONENT_SIZE {
            bail!(
                "component {} is larger than {} MiB",
                path.display(),
                MAX_COMPONENT_SIZE >> 20
            );
        }
        let stat_key = meta
            .modified()
            .ok()
            .map(|m| (path.to_path_buf(), meta.len(), m));
        if let Some(key) = &stat_key {
            let hash = self
                .by_stat
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(key)
                .copied();
            if let Some(hit) = hash.and_then(|h| {
                self.memory
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&h)
                    .cloned()
            }) {
                return Ok(hit);
            }
        }
        let bytes =
            std::fs::read(path).with_context(|| format!("reading component {}", path.display()))?;
        // A core module or anything else is refused before compiling.
        if bytes.len() < 8 || &bytes[0..4] != b"\0asm" || bytes[4..8] != [0x0d, 0x00, 0x01, 0x00] {
            bail!(
                "{} is not a WebAssembly component (build it for wasm32-wasip2)",
                path.display()
            );
        }
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        let component = match self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
        {
            Some(hit) => hit.clone(),
            None => self.load_uncached(engine, &bytes, &hash, path)?,
        };
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, component.clone());
        if let Some(key) = stat_key {
            self.by_stat
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, hash);
        }
        Ok(component)
    }

    fn load_uncached(
        &self,
        engine: &Engine,
        bytes: &[u8],
        hash: &[u8; 32],
        path: &Path,
    ) -> anyhow::Result<Component> {
        let Some(dir) = &self.dir else {
            return compile(engine, bytes, path);
        };
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let file = dir.join(format!("{:016x}-{hex}.cwasm", self.engine_key));
        if file.exists() {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash into the runtime's own
            // cache directory, which the operator must keep private.
            match unsafe { Component::deserialize_file(engine, &file) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(cache = %file.display(), "ignoring unusable cached component: {e}")
                }
            }
        }
        let component = compile(engine, bytes, path)?;
        if let Err(e) = write_artifact(dir, &file, &component) {
            tracing::warn!(cache = %file.display(), "could not cache compiled component: {e:#}");
        }
        Ok(component)
    }
}

fn compile(engine: &Engine, bytes: &[u8], path: &Path) -> anyhow::Result<Component> {
    Component::new(engine, bytes)
        .map_err(wasmtime_error)
        .with_context(|| format!("compiling component {}", path.display()))
}

fn write_artifact(dir: &Path, file: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let serialized = component.serialize().map_err(wasmtime_error)?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serialized)?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}

/// Converts a wasmtime error (its own type in wasmtime 48, not anyhow's)
/// into an anyhow error, keeping its message chain.
pub(crate) fn wasmtime_error(error: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from_boxed(error.into_boxed_dyn_error())
}

/// Options of a [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled components are cached as `.cwasm` files (created if
    /// missing; keep it private to the daemon). `None`: memory only.
    pub cache_dir: Option<PathBuf>,
    /// The restart backoff after faults.
    pub restart: RestartPolicy,
    /// How compiled code is made executable: by default wasmtime's `mprotect`, or
    /// memfd mappings where MemoryDenyWriteExecute refuses that.
    pub code_memory: CodeMemory,
}

/// What [`Runtime::inspect`] found.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The file's size in bytes.
    pub size: u64,
    /// The world whose interface it exports, if any.
    pub world: Option<World>,
    /// Its imports (interfaces with their versions).
    pub imports: Vec<String>,
    /// Its exports.
    pub exports: Vec<String>,
    /// `Ok` when this host runs it as that world, else why not.
    pub fits: Result<(), String>,
}

/// The plugin runtime: one wasmtime engine with epoch interruption, a
/// 10 ms epoch ticker thread, the host linker and the component cache.
/// Cheap to clone; plugins keep what they need alive.
#[derive(Clone)]
pub struct Runtime {
    engine: Arc<EngineShared>,
    options: RuntimeOptions,
}

impl Runtime {
    /// A runtime with default options (memory-only component cache).
    pub fn new() -> anyhow::Result<Self> {
        Self::with_options(RuntimeOptions::default())
    }

    /// A runtime with `options`.
    pub fn with_options(options: RuntimeOptions) -> anyhow::Result<Self> {
        Ok(Runtime {
            engine: Arc::new(EngineShared::with_code_memory(
                options.cache_dir.clone(),
                options.code_memory,
            )?),
            options,
        })
    }

    /// How this runtime makes compiled code executable: [`CodeMemory::Mprotect`] or
    /// [`CodeMemory::Memfd`] (`Auto` resolved when the runtime was created).
    pub fn code_memory(&self) -> CodeMemory {
        self.engine.code_memory
    }

    /// Validates a spec without running anything: name, intervals and
    /// counts, grants (addresses parse, memory and deadline in range), the
    /// component (exists, is a component, exports the world's interface and
    /// imports nothing the host lacks). Compiles the component (cached).
    pub fn check(&self, spec: &PluginSpec) -> anyhow::Result<()> {
        crate::supervisor::prepare(&self.engine, spec.clone()).map(drop)
    }

    /// [`check`](Self::check), then starts one instance and runs its `init` with the
    /// spec's settings (and a policy's data files), so that settings or a data file the
    /// plugin refuses are reported with its reason (`wasmbgp check`, and `run` before
    /// anything starts). Runs on a thread of its own: callable from anywhere, tokio or not.
    pub fn check_init(&self, spec: &PluginSpec) -> anyhow::Result<()> {
        let prepared = crate::supervisor::prepare(&self.engine, spec.clone())?;
        let engine = self.engine.clone();
        std::thread::scope(|scope| {
            scope
                .spawn(move || crate::supervisor::trial_init(engine, prepared))
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the trial init panicked")))
        })
    }

    /// What a component is (`wasmbgp plugin inspect`): its imports and exports, and for
    /// the world it exports, whether this host would run it.
    pub fn inspect(&self, path: &Path) -> anyhow::Result<Inspection> {
        let component = self.engine.load(path)?;
        let ty = component.component_type();
        let engine = &self.engine.engine;
        let imports: Vec<String> = ty
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exports: Vec<String> = ty
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let world = [World::Healthcheck, World::Policy, World::Exporter]
            .into_iter()
            .find(|w| exports.iter().any(|e| e == w.export_interface()));
        let fits = match world {
            Some(world) => self
                .check(&crate::PluginSpec::new("inspect", world, path))
                .map_err(|e| format!("{e:#}")),
            None => Err(format!(
                "it exports none of this host's worlds ({}, {}, {})",
                World::Healthcheck.export_interface(),
                World::Policy.export_interface(),
                World::Exporter.export_interface()
            )),
        };
        Ok(Inspection {
            size: std::fs::metadata(path)?.len(),
            world,
            imports,
            exports,
            fits,
        })
    }

    /// Checks and starts a plugin on the current tokio runtime; its events go
    /// to `events`. Compiles synchronously (cached): for a large component
    /// not yet cached, call it from a blocking context. Must be called within
    /// a tokio runtime.
    pub fn start(
        &self,
        spec: PluginSpec,
        events: crate::EventSender,
    ) -> anyhow::Result<PluginHandle> {
        if tokio::runtime::Handle::try_current().is_err() {
            anyhow::bail!("Runtime::start must be called within a tokio runtime");
        }
        let prepared = crate::supervisor::prepare(&self.engine, spec)?;
        Ok(PluginHandle::spawn(
            self.engine.clone(),
            prepared,
            self.options.restart,
            events,
        ))
    }
}
