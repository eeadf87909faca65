//! The one policy for getting the data, shared by every command: look in `--data-dir`, then
//! `$FASHION_MNIST_DIR`, then the download cache, then Debian's folder; download into the cache
//! when none has it; read and validate the files; check the pinned SHA-256 sums unless told not to.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::download::{self, NoTransfers, OFFICIAL_BASE_URL, OFFICIAL_FILES, RemoteFile, TransferSink, Transfers};
use super::{ALL_FILES, IdxFile, PIXELS, Split, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, idx};
use crate::error::{Error, Result};

/// Env variable naming a folder with the IDX files.
pub const ENV_DIR: &str = "FASHION_MNIST_DIR";
/// Env variable replacing the download's base URL (a mirror).
pub const ENV_URL: &str = "FASHION_MNIST_URL";
/// Where a download goes (relative to the working directory).
pub const CACHE_DIR: &str = "data/fashion-mnist";
/// Where Debian's `dataset-fashion-mnist` installs the files.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Where to find the data and how to check it (the CLI's `--data-dir` and `--skip-checksum`).
#[derive(Debug, Clone, Default)]
pub struct DataOptions {
    pub data_dir: Option<PathBuf>,
    /// Skip the pinned SHA-256 check (for custom IDX data).
    pub skip_checksum: bool,
    /// Where a download reports its progress (nothing is shown without one).
    pub transfers: Option<TransferSink>,
}

/// Which splits a command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Training and test split (train).
    All,
    /// The test split only (eval, predict): a folder with just the two t10k files will do.
    TestOnly,
    /// The training split only (a sweep's search, which must not read the test set).
    TrainOnly,
}

impl Need {
    fn files(self) -> &'static [IdxFile] {
        match self {
            Need::All => &ALL_FILES,
            Need::TestOnly => &ALL_FILES[2..],
            Need::TrainOnly => &ALL_FILES[..2],
        }
    }
}

/// Where the data was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(PathBuf),
    Env(PathBuf),
    Cache(PathBuf),
    System(PathBuf),
    /// Not found anywhere, so downloaded into the cache.
    Downloaded(PathBuf),
}

impl Source {
    pub fn dir(&self) -> &Path {
        match self {
            Source::Flag(p) | Source::Env(p) | Source::Cache(p) | Source::System(p) | Source::Downloaded(p) => p,
        }
    }
}

/// The data a command asked for and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Empty under [`Need::TestOnly`].
    pub train: Split,
    pub test: Split,
    pub source: Source,
    /// Whether the files matched the pinned SHA-256 sums (false: not checked).
    pub verified: bool,
}

impl Loaded {
    pub fn dir(&self) -> &Path {
        self.source.dir()
    }

    /// The line commands print first, e.g. `data: DIR (60000 train, 10000 test images, checksums OK)`.
    pub fn describe(&self) -> String {
        let counts = if self.train.is_empty() {
            format!("{} test images", self.test.len())
        } else if self.test.is_empty() {
            format!("{} train images", self.train.len())
        } else {
            format!("{} train, {} test images", self.train.len(), self.test.len())
        };
        let check = if self.verified { "checksums OK" } else { "checksum not checked" };
        format!("data: {} ({counts}, {check})", self.dir().display())
    }
}

/// Find (downloading if no folder has them), read and check the files `need` names. `out`
/// receives progress notes (a download starting, files already present); the library prints nothing.
pub fn open(opts: &DataOptions, need: Need, out: &mut dyn FnMut(String)) -> Result<Loaded> {
    let transfers: &dyn Transfers = match &opts.transfers {
        Some(t) => t.0.as_ref(),
        None => &NoTransfers,
    };
    Lookup::standard(opts.data_dir.as_deref())?.open(need, !opts.skip_checksum, out, transfers)
}

/// Where the complete data set is, without downloading: `None` when no folder has it. A
/// folder named explicitly (flag or env) that lacks a file is an error, not a fallback.
pub fn locate(flag: Option<&Path>) -> Result<Option<Source>> {
    Lookup::standard(flag)?.locate(Need::All)
}

/// The places to look and the download to fall back on: the real ones, or a test's.
struct Lookup<'a> {
    flag: Option<&'a Path>,
    env: Option<PathBuf>,
    cache: PathBuf,
    system: PathBuf,
    base_url: String,
    remote: &'a [RemoteFile],
}

impl<'a> Lookup<'a> {
    fn standard(flag: Option<&'a Path>) -> Result<Self> {
        let base_url = match std::env::var(ENV_URL) {
            Ok(url) if !url.is_empty() => url,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Error::input(format!("${ENV_URL} is not valid UTF-8; set it to an http(s) URL or unset it")));
            }
            _ => OFFICIAL_BASE_URL.to_string(),
        };
        Ok(Lookup {
            flag,
            env: std::env::var_os(ENV_DIR).filter(|v| !v.is_empty()).map(PathBuf::from),
            cache: PathBuf::from(CACHE_DIR),
            system: PathBuf::from(SYSTEM_DIR),
            base_url,
            remote: &OFFICIAL_FILES,
        })
    }

    fn locate(&self, need: Need) -> Result<Option<Source>> {
        if let Some(dir) = self.flag {
            if !dir.is_dir() {
                return Err(Error::data(dir, "--data-dir is not a folder; pass the folder that holds the IDX files"));
            }
            check_has(dir, need, "--data-dir")?;
            return Ok(Some(Source::Flag(dir.to_path_buf())));
        }
        if let Some(dir) = &self.env {
            check_has(dir, need, &format!("${ENV_DIR}"))?;
            return Ok(Some(Source::Env(dir.clone())));
        }
        if has(&self.cache, need) {
            return Ok(Some(Source::Cache(self.cache.clone())));
        }
        Ok(has(&self.system, need).then(|| Source::System(self.system.clone())))
    }

    fn open(&self, need: Need, verify: bool, out: &mut dyn FnMut(String), transfers: &dyn Transfers) -> Result<Loaded> {
        let source = match self.locate(need)? {
            Some(source) => source,
            None => self.download(need, out, transfers)?,
        };
        let dir = source.dir();
        let train = match need {
            Need::TestOnly => Split::default(),
            _ => load_split(dir, &TRAIN_IMAGES, &TRAIN_LABELS, verify)?,
        };
        let test = match need {
            Need::TrainOnly => Split::default(),
            _ => load_split(dir, &TEST_IMAGES, &TEST_LABELS, verify)?,
        };
        Ok(Loaded { train, test, source, verified: verify })
    }

    /// Fetch the `.gz` files of `need` into the cache.
    fn download(&self, need: Need, out: &mut dyn FnMut(String), transfers: &dyn Transfers) -> Result<Source> {
        let wanted: Vec<RemoteFile> = self
            .remote
            .iter()
            .filter(|r| need.files().iter().any(|f| r.name.strip_suffix(".gz") == Some(f.name)))
            .copied()
            .collect();
        out(format!(
            "Fashion-MNIST not found (--data-dir, ${ENV_DIR}, {}, {}); downloading from {} into {}",
            self.cache.display(),
            self.system.display(),
            self.base_url,
            self.cache.display()
        ));
        download::download_files(&self.base_url, &wanted, &self.cache, out, transfers)?;
        Ok(Source::Downloaded(self.cache.clone()))
    }
}

/// The path of `file` in `dir`: the plain name or `name.gz`, whichever exists.
pub fn find_file(dir: &Path, file: &IdxFile) -> Option<PathBuf> {
    let plain = dir.join(file.name);
    if plain.exists() {
        return Some(plain);
    }
    let gz = dir.join(format!("{}.gz", file.name));
    gz.exists().then_some(gz)
}

fn has(dir: &Path, need: Need) -> bool {
    need.files().iter().all(|f| find_file(dir, f).is_some())
}

/// An error naming the files of `need` that `dir` (named by `origin`) lacks, if any.
fn check_has(dir: &Path, need: Need, origin: &str) -> Result<()> {
    let missing: Vec<_> = need
        .files()
        .iter()
        .filter(|f| find_file(dir, f).is_none())
        .map(|f| format!("{}[.gz]", f.name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::data(
        dir,
        format!("{origin} lacks {}; put the Fashion-MNIST IDX files there (gzipped or not)", missing.join(", ")),
    ))
}

fn check_sum(path: &Path, content: &[u8], file: &IdxFile) -> Result<()> {
    let got = download::to_hex(&Sha256::digest(content));
    if got != file.sha256 {
        return Err(Error::data(
            path,
            format!(
                "content is not the official Fashion-MNIST {} (SHA-256 {}, expected {}); replace the file, or pass --skip-checksum if this is your own IDX data",
                file.name,
                &got[..16],
                &file.sha256[..16]
            ),
        ));
    }
    Ok(())
}

/// Read, parse and (if `verify`) checksum one file of `dir`.
fn load_file(dir: &Path, file: &IdxFile, verify: bool) -> Result<(PathBuf, Vec<u8>)> {
    // A file deleted between the lookup and the read still gets a one-line, named error.
    let path = find_file(dir, file).ok_or_else(|| {
        Error::data(dir, format!("the data folder lacks {}[.gz]; put it back or re-download", file.name))
    })?;
    let content = idx::read_content(&path, file.layout.max_content_len())?;
    if content.is_empty() {
        return Err(Error::data(
            &path,
            "is empty; replace it with the IDX file (re-download, or apt-get install dataset-fashion-mnist)",
        ));
    }
    // The format is checked first so a malformed file gets the precise message; the checksum
    // then catches well-formed but foreign content.
    let parsed = idx::parse(&file.layout, &content, &path)?;
    if verify {
        check_sum(&path, &content, file)?;
    }
    Ok((path, parsed))
}

fn load_split(dir: &Path, images: &IdxFile, labels: &IdxFile, verify: bool) -> Result<Split> {
    let (ipath, images) = load_file(dir, images, verify)?;
    let (lpath, labels) = load_file(dir, labels, verify)?;
    let n_images = images.len() / PIXELS;
    if n_images != labels.len() {
        return Err(Error::data(
            &lpath,
            format!("has {} labels but {} has {n_images} images; use matching files", labels.len(), ipath.display()),
        ));
    }
    if n_images == 0 {
        return Err(Error::data(&ipath, "holds no images; use a non-empty IDX file"));
    }
    Ok(Split { images, labels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::download::tests::{Server, remote, response};
    use crate::data::{encode_labels, write_synthetic};

    fn opts(dir: &Path, verify: bool) -> DataOptions {
        DataOptions { data_dir: Some(dir.to_path_buf()), skip_checksum: !verify, transfers: None }
    }

    fn load(dir: &Path, verify: bool) -> Result<Loaded> {
        open(&opts(dir, verify), Need::All, &mut |m| panic!("unexpected note {m}"))
    }

    /// A temp folder with 10 train and 10 test images.
    fn synthetic_dir(gz: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 10, 10, 1, gz).unwrap();
        dir
    }

    /// A lookup in which only `flag`/`env` can hold data, and downloads go to `root`/cache.
    fn lookup<'a>(root: &Path, base_url: &str, remote: &'a [RemoteFile]) -> Lookup<'a> {
        Lookup {
            flag: None,
            env: None,
            cache: root.join("cache"),
            system: root.join("no-system"),
            base_url: base_url.to_string(),
            remote,
        }
    }

    #[test]
    fn reads_plain_and_gzip_and_describes_the_source() {
        for gz in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_synthetic(dir.path(), 50, 20, 1, gz).unwrap();
            let d = load(dir.path(), false).unwrap();
            assert_eq!((d.train.len(), d.test.len()), (50, 20));
            assert_eq!(d.train.images.len(), 50 * PIXELS);
            assert_eq!(d.source, Source::Flag(dir.path().to_path_buf()));
            let want = format!("data: {} (50 train, 20 test images, checksum not checked)", dir.path().display());
            assert_eq!(d.describe(), want);
        }
    }

    #[test]
    fn test_only_needs_only_the_test_files() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 10, 12, 1, false).unwrap();
        std::fs::remove_file(dir.path().join(TRAIN_IMAGES.name)).unwrap();
        let d = open(&opts(dir.path(), false), Need::TestOnly, &mut |_| {}).unwrap();
        assert!(d.train.is_empty());
        assert_eq!(d.test.len(), 12);
        assert!(d.describe().ends_with("(12 test images, checksum not checked)"), "{}", d.describe());
        let e = load(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains("--data-dir lacks train-images-idx3-ubyte[.gz];"), "{e}");
        // The other way round: a sweep's search reads the training files only.
        write_synthetic(dir.path(), 10, 12, 1, false).unwrap();
        std::fs::remove_file(dir.path().join(TEST_IMAGES.name)).unwrap();
        let d = open(&opts(dir.path(), false), Need::TrainOnly, &mut |_| {}).unwrap();
        assert_eq!((d.train.len(), d.test.len(), d.describe().ends_with("(10 train images, checksum not checked)")), (10, 0, true));
    }

    #[test]
    fn checksum_rejects_foreign_content_unless_skipped() {
        let dir = synthetic_dir(false);
        let e = load(dir.path(), true).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte") && e.contains("SHA-256"), "{e}");
        assert!(e.contains("--skip-checksum"), "{e}");
        assert!(load(dir.path(), false).is_ok());
    }

    #[test]
    fn count_mismatch_names_the_label_file() {
        let dir = synthetic_dir(false);
        std::fs::write(dir.path().join(TRAIN_LABELS.name), encode_labels(&[1; 9])).unwrap();
        let e = load(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains("train-labels-idx1-ubyte") && e.contains("9 labels"), "{e}");
    }

    #[test]
    fn corrupt_gzip_and_directories_are_named() {
        let dir = synthetic_dir(true);
        let p = dir.path().join("train-images-idx3-ubyte.gz");
        let mut bytes = std::fs::read(&p).unwrap();
        let mid = bytes.len() / 2;
        for b in &mut bytes[12..mid] {
            *b ^= 0x5a;
        }
        std::fs::write(&p, bytes).unwrap();
        let e = load(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte.gz"), "{e}");

        let dir = synthetic_dir(false);
        std::fs::remove_file(dir.path().join(TEST_LABELS.name)).unwrap();
        std::fs::create_dir(dir.path().join(TEST_LABELS.name)).unwrap();
        let e = load(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
    }

    #[test]
    fn an_explicit_folder_is_never_a_fallback() {
        let dir = synthetic_dir(false);
        assert_eq!(locate(Some(dir.path())).unwrap(), Some(Source::Flag(dir.path().to_path_buf())));
        std::fs::remove_file(dir.path().join(TEST_IMAGES.name)).unwrap();
        let e = locate(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("t10k-images-idx3-ubyte"), "{e}");
        let e = locate(Some(&dir.path().join("nope"))).unwrap_err().to_string();
        assert!(e.contains("--data-dir is not a folder"), "{e}");

        // An env folder lacking files is an error too, even with a full cache.
        let root = tempfile::tempdir().unwrap();
        let mut l = lookup(root.path(), "http://127.0.0.1:9/", &[]);
        write_synthetic(&l.cache, 10, 10, 1, false).unwrap();
        assert_eq!(l.locate(Need::All).unwrap(), Some(Source::Cache(l.cache.clone())));
        l.env = Some(dir.path().to_path_buf());
        let e = l.locate(Need::All).unwrap_err().to_string();
        assert!(e.contains("$FASHION_MNIST_DIR lacks t10k-images-idx3-ubyte"), "{e}");
        assert_eq!(l.locate(Need::TestOnly).unwrap_err().to_string(), e);
    }

    /// Nothing found: the files `need` names are fetched into the cache, then read from there.
    #[test]
    fn missing_data_is_downloaded_into_the_cache_for_every_need() {
        let served = tempfile::tempdir().unwrap();
        write_synthetic(served.path(), 30, 20, 4, true).unwrap();
        let remote: Vec<RemoteFile> = ALL_FILES
            .iter()
            .map(|f| {
                let name = format!("{}.gz", f.name);
                remote(&name, &std::fs::read(served.path().join(&name)).unwrap())
            })
            .collect();
        let dir = served.path().to_path_buf();
        let server = Server::start(6, move |path| response("200 OK", &std::fs::read(dir.join(&path[1..])).unwrap()));
        let root = tempfile::tempdir().unwrap();
        let l = lookup(root.path(), &server.base_url, &remote);
        let mut notes = Vec::new();

        let d = l.open(Need::TestOnly, false, &mut |m| notes.push(m), &NoTransfers).unwrap();
        assert_eq!(server.hits(), 2, "only the test files");
        assert_eq!(d.source, Source::Downloaded(l.cache.clone()));
        assert_eq!((d.train.len(), d.test.len()), (0, 20));
        assert!(notes[0].contains("not found") && notes[0].contains(&server.base_url), "{notes:?}");

        let d = l.open(Need::All, false, &mut |m| notes.push(m), &NoTransfers).unwrap();
        assert_eq!(server.hits(), 4, "the test files are kept");
        assert_eq!((d.train.len(), d.test.len()), (30, 20));
        assert!(notes.iter().any(|n| n.ends_with("t10k-labels-idx1-ubyte.gz: already present, MD5 OK")), "{notes:?}");

        let d = l.open(Need::All, false, &mut |m| panic!("unexpected note {m}"), &NoTransfers).unwrap();
        assert_eq!(d.source, Source::Cache(l.cache.clone()));
        assert_eq!(server.hits(), 4);
    }

    #[test]
    fn a_failed_download_is_a_download_error() {
        let root = tempfile::tempdir().unwrap();
        let l = lookup(root.path(), "http://127.0.0.1:9/", &OFFICIAL_FILES);
        let e = l.open(Need::TestOnly, true, &mut |_| {}, &NoTransfers).unwrap_err();
        assert!(matches!(e, Error::Download(_)), "{e:?}");
        assert!(e.to_string().contains("t10k-images-idx3-ubyte.gz"), "{e}");
    }

    /// The pinned sums are those of the real data (CI installs it; so must a developer).
    #[test]
    fn the_system_copy_matches_the_pinned_checksums() {
        if !Path::new(SYSTEM_DIR).is_dir() && std::env::var_os("D2L_MLP_REQUIRE_ALL").is_none() {
            // Said past the test harness's capture; CI (D2L_MLP_REQUIRE_ALL) installs the data.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: the pinned-checksum test needs the real data set (apt-get install dataset-fashion-mnist)");
            return;
        }
        let d = load(Path::new(SYSTEM_DIR), true).expect("needs Debian's package: apt-get install dataset-fashion-mnist");
        assert_eq!(d.train.len(), 60_000);
        assert_eq!(d.test.len(), 10_000);
        assert!(d.describe().ends_with("(60000 train, 10000 test images, checksums OK)"));
    }
}
