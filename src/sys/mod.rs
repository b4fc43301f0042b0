//! What zcp asks of the operating system outside any transfer: signal handling (`signals`), a
//! description of the machine (`machine`) and the CPU and memory a process used (`rusage`).

pub mod machine;
pub mod rusage;
pub mod signals;
