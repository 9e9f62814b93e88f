//! `owi-drag-source FILE X Y`: a small GTK window at (X, Y) that offers FILE
//! for dragging, as a file manager does (`text/uri-list`). The end-to-end
//! tests drag it onto the app with xdotool, which is the only way to give
//! the app a real OS drop under Xvfb.
//!
//! It prints lines the harness waits for: `ready X Y W H` once its window is
//! on the screen (where it really is), `drag-begin` and `drag-end`.

use std::path::PathBuf;
use std::process::ExitCode;

use gtk::prelude::*;
use gtk::{gdk, glib};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(file), Some(x), Some(y)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: owi-drag-source FILE X Y");
        return ExitCode::from(2);
    };
    let at = |v: std::ffi::OsString| v.to_str().and_then(|s| s.parse::<i32>().ok());
    let (Some(x), Some(y)) = (at(x), at(y)) else {
        eprintln!("owi-drag-source: X and Y must be whole numbers");
        return ExitCode::from(2);
    };
    let file = PathBuf::from(file);
    let uri = match glib::filename_to_uri(&file, None) {
        Ok(uri) => uri.to_string(),
        Err(e) => {
            eprintln!("owi-drag-source: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    if let Err(e) = gtk::init() {
        eprintln!("owi-drag-source: no display: {e}");
        return ExitCode::FAILURE;
    }

    let window = gtk::Window::new(gtk::WindowType::Toplevel);
    window.set_title("Drag me");
    window.set_default_size(220, 120);
    window.move_(x, y);

    let handle = gtk::EventBox::new();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    handle.add(&gtk::Label::new(Some(&name)));
    let targets = [gtk::TargetEntry::new(
        "text/uri-list",
        gtk::TargetFlags::OTHER_APP,
        0,
    )];
    handle.drag_source_set(
        gdk::ModifierType::BUTTON1_MASK,
        &targets,
        gdk::DragAction::COPY,
    );
    handle.connect_drag_data_get(move |_, _, data, _, _| {
        data.set_uris(&[uri.as_str()]);
    });
    handle.connect_drag_begin(|_, _| println!("drag-begin"));
    handle.connect_drag_end(|_, _| println!("drag-end"));
    window.add(&handle);

    window.connect_map_event(|window, _| {
        let (x, y) = window
            .window()
            .map(|w| {
                let (_, x, y) = w.origin();
                (x, y)
            })
            .unwrap_or_default();
        let (w, h) = window.size();
        println!("ready {x} {y} {w} {h}");
        glib::Propagation::Proceed
    });
    window.connect_delete_event(|_, _| {
        gtk::main_quit();
        glib::Propagation::Proceed
    });
    window.show_all();
    gtk::main();
    ExitCode::SUCCESS
}
