//! A Python extension module whose `#[pyfunction]`s call `#[hotswap::hot]` Rust functions.
//! `app.py` imports it from the library's path and calls it in a loop; under
//! `cargo hotswap run --lib -p python-ext -- python3 examples/python/app.py` an edit of a hot
//! function (the `label` in `greeting`, what `score` computes) is patched inside the running
//! interpreter, whose objects stay as they were. The hot functions are plain Rust: no PyO3
//! types in their signatures (PyO3 converts at the `#[pyfunction]` boundary, which stays put).

use pyo3::prelude::*;

/// The text `greet` returns.
#[hotswap::hot]
pub fn greeting(name: &str) -> String {
    let label = "v1";
    format!("hello {name} from {label}")
}

/// What `score` returns for the numbers it is given.
#[hotswap::hot]
pub fn score(values: &[i64]) -> i64 {
    values.iter().sum()
}

/// `greet('x')`: the hot `greeting`.
#[pyfunction]
fn greet(name: &str) -> String {
    greeting(name)
}

/// `score([1, 2, 3])`: a Python list of ints, scored by hot code.
#[pyfunction(name = "score")]
fn score_list(values: Vec<i64>) -> i64 {
    score(&values)
}

/// How many patches the library has taken (0 when built without hot reloading).
#[pyfunction]
fn version() -> u64 {
    hotswap::version()
}

#[pymodule]
fn python_ext(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(greet, module)?)?;
    module.add_function(wrap_pyfunction!(score_list, module)?)?;
    module.add_function(wrap_pyfunction!(version, module)?)?;
    Ok(())
}
