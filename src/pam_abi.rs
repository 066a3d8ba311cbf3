//! Linux-PAM's conversation structures laid out as `<security/pam_appl.h>` declares them: the
//! one definition that the module (`pam`) and the application side of the tests and the CLI
//! (`harness/`, which compiles this same file) both hand to libpam.

use std::ffi::{c_char, c_int, c_void};

#[repr(C)]
pub struct PamMessage {
    pub msg_style: c_int,
    pub msg: *const c_char,
}

#[repr(C)]
pub struct PamResponse {
    pub resp: *mut c_char,
    pub resp_retcode: c_int,
}

pub type ConvCallback =
    unsafe extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int;

/// `conv` is NULL-able on the C side, so it is read as an `Option`.
#[repr(C)]
pub struct PamConv {
    pub conv: Option<ConvCallback>,
    pub appdata_ptr: *mut c_void,
}
