//! What zcp asks of the operating system outside any transfer: signal handling (`signals`), a
//! description of the machine (`machine`), the CPU and memory a process used (`rusage`) and
//! what the kernel counted on a TCP connection (`tcp`); random bytes (`random`).

pub mod machine;
pub mod random;
pub mod rusage;
pub mod signals;
pub mod tcp;
